import type { Command } from 'commander'

/** Flags of every command that runs a node of its own. */
export function withNetworkFlags(cmd: Command): Command {
  return cmd
    .option('--bootstrap <multiaddr...>', 'peers to join through (multiaddrs ending in /p2p/<id>)')
    .option('--peer <multiaddr...>', 'peers to remember, e.g. arbiters (multiaddrs ending in /p2p/<id>)')
    .option('--listen <multiaddr...>', 'listen addresses', ['/ip4/127.0.0.1/tcp/0'])
    .option('--no-local', 'a public network: drop loopback/private addresses from the DHT')
}
