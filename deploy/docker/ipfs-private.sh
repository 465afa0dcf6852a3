#!/bin/sh
# A private Kubo node for ChainChat (docs/operations.md §2.4): the ipfs/kubo image runs the scripts
# in /container-init.d/ before every daemon start. Blobs are ciphertext, but a node on the public
# network would announce every CID and serve it to anyone who learns it (a removed member, say):
# the files service's access control must be the only way to a blob. So: no routing, no bootstrap
# peers, nothing announced, no discovery, swarm on the container's loopback only, a gateway that
# never fetches. The RPC API and the gateway listen inside the Compose network, with no host port.
set -e
ipfs config Routing.Type none
ipfs config --json Bootstrap '[]'
ipfs config --json Peering.Peers '[]'
ipfs config --json Addresses.Swarm '["/ip4/127.0.0.1/tcp/4001"]'
ipfs config --json Addresses.Announce '[]'
ipfs config --json Addresses.AppendAnnounce '[]'
ipfs config --json Addresses.NoAnnounce '["/ip4/0.0.0.0/ipcidr/0", "/ip6/::/ipcidr/0"]'
ipfs config --json Discovery.MDNS.Enabled false
ipfs config --json Swarm.DisableNatPortMap true
ipfs config --json Swarm.RelayClient.Enabled false
ipfs config --json Swarm.RelayService.Enabled false
ipfs config --json Swarm.Transports.Network.Relay false
ipfs config --json AutoNAT.ServiceMode '"disabled"'
ipfs config Reprovider.Interval 0
ipfs config --json Gateway.NoFetch true
ipfs config Addresses.API /ip4/0.0.0.0/tcp/5001
ipfs config Addresses.Gateway /ip4/0.0.0.0/tcp/8080
