// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title ChainChatLedger
/// @notice Anchors the tree heads of ChainChat's RFC 9162 transparency log and verifies inclusion
///         proofs against them. Only hashes are stored: no message, file or address book data.
/// @dev One transaction anchors a whole batch of log entries, whatever its size. Heads are
///      append-only and strictly growing in tree size, so an anchored head can never be
///      rewritten or rolled back, even by an admin.
contract ChainChatLedger is AccessControl {
    /// @notice Role allowed to anchor tree heads (the ledger service's account).
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    /// @dev Two storage slots per head: (treeSize, timestamp) packed, then rootHash.
    struct Head {
        uint64 treeSize;
        uint64 timestamp;
        bytes32 rootHash;
    }

    Head[] private _heads;

    /// @notice A tree head was anchored. `index` is its position in the list of heads.
    event Anchored(uint256 indexed index, uint64 treeSize, bytes32 rootHash, uint256 timestamp);

    /// @notice `treeSize` is not greater than the last anchored tree size.
    error TreeSizeNotIncreasing(uint64 lastTreeSize, uint64 treeSize);
    /// @notice No head has this index.
    error HeadIndexOutOfRange(uint256 index, uint256 headCount);
    /// @notice Nothing has been anchored yet.
    error NoHeads();

    /// @param admin receives DEFAULT_ADMIN_ROLE (role management) and ANCHORER_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, admin);
    }

    /// @notice Anchor the tree head `(treeSize, rootHash)`; the tree must have grown.
    function anchor(uint64 treeSize, bytes32 rootHash) external onlyRole(ANCHORER_ROLE) {
        uint256 count = _heads.length;
        uint64 last = count == 0 ? 0 : _heads[count - 1].treeSize;
        if (treeSize <= last) revert TreeSizeNotIncreasing(last, treeSize);
        _heads.push(Head({treeSize: treeSize, timestamp: uint64(block.timestamp), rootHash: rootHash}));
        emit Anchored(count, treeSize, rootHash, block.timestamp);
    }

    /// @notice Number of anchored heads.
    function headCount() external view returns (uint256) {
        return _heads.length;
    }

    /// @notice The anchored head at `index`.
    function head(uint256 index) public view returns (uint64 treeSize, bytes32 rootHash, uint256 timestamp) {
        if (index >= _heads.length) revert HeadIndexOutOfRange(index, _heads.length);
        Head storage h = _heads[index];
        return (h.treeSize, h.rootHash, h.timestamp);
    }

    /// @notice The most recent head and its index; reverts with NoHeads when none exists.
    function latestHead()
        external
        view
        returns (uint256 index, uint64 treeSize, bytes32 rootHash, uint256 timestamp)
    {
        uint256 count = _heads.length;
        if (count == 0) revert NoHeads();
        index = count - 1;
        (treeSize, rootHash, timestamp) = head(index);
    }

    /// @notice RFC 9162 §2.1.3.2: does `proof` show that `leafHash` (SHA-256(0x00 || leaf)) is
    ///         leaf `leafIndex` of the tree anchored as head `headIndex`?
    /// @dev Returns false (never reverts) for an unknown head or a malformed proof, so a verifier
    ///      gets one answer for "not proven".
    function verifyInclusion(uint256 headIndex, uint64 leafIndex, bytes32 leafHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        if (headIndex >= _heads.length || proof.length > 64) return false;
        Head storage h = _heads[headIndex];
        (bool ok, bytes32 root) = _rootFromPath(leafIndex, h.treeSize, leafHash, proof);
        return ok && root == h.rootHash;
    }

    /// @dev The RFC 9162 §2.1.3.2 loop, step by step; `ok` is false where the RFC says "fail".
    function _rootFromPath(uint64 leafIndex, uint64 treeSize, bytes32 leafHash, bytes32[] calldata proof)
        private
        view
        returns (bool ok, bytes32 r)
    {
        if (leafIndex >= treeSize) return (false, 0);
        uint256 fn = leafIndex;
        uint256 sn = uint256(treeSize) - 1;
        r = leafHash;
        for (uint256 i = 0; i < proof.length; ++i) {
            if (sn == 0) return (false, 0);
            if (fn & 1 == 1 || fn == sn) {
                r = _nodeHash(proof[i], r);
                // right-most node of its level: skip the levels where it has no right sibling
                if (fn & 1 == 0) {
                    while (fn != 0 && fn & 1 == 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = _nodeHash(r, proof[i]);
            }
            fn >>= 1;
            sn >>= 1;
        }
        ok = sn == 0;
    }

    /// @dev RFC 9162 interior node hash SHA-256(0x01 || left || right) via the sha256 precompile
    ///      (address 0x02), in scratch memory above the free pointer so nothing is allocated.
    function _nodeHash(bytes32 left, bytes32 right) private view returns (bytes32 out) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            if iszero(staticcall(gas(), 0x02, ptr, 65, ptr, 32)) { revert(0, 0) }
            out := mload(ptr)
        }
    }
}
