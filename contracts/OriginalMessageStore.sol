// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title OriginalMessageStore
/// @notice For the benchmark ONLY: the original design's per-message contract (SEED.md), which
///         deployed one of these for every message and then stored the message in plaintext.
///         ChainChat never does this; the benchmark measures what it costs, next to our anchors.
contract OriginalMessageStore {
    string public message;
    address public sender;
    uint256 public timestamp;

    function store(string calldata text) external {
        message = text;
        sender = msg.sender;
        timestamp = block.timestamp;
    }
}
