import type { Command } from 'commander'

/** Flags of every command that runs a node of its own. */
export function withNetworkFlags(cmd: Command): Command {
  return cmd
    .option('--bootstrap <multiaddr...>', 'peers to join through (multiaddrs ending in /p2p/<id>)')
    .option('--peer <multiaddr...>', 'peers to remember, e.g. arbiters (multiaddrs ending in /p2p/<id>)')
    .option('--listen <multiaddr...>', 'listen addresses', ['/ip4/127.0.0.1/tcp/0'])
    .option('--no-local', 'a public network: drop loopback/private addresses from the DHT')
}

/** Flags of the commands that pay: which rail hands each release to the user's payment system. */
export function withRailFlags(cmd: Command): Command {
  return cmd
    .option('--rail-command <cmd>', 'pay through your own program: run it per release (split on spaces), release JSON on stdin, TALLY_* variables')
    .option('--rail-url <url>', 'pay through your own service: POST each release as JSON to this URL')
    .option('--rail-timeout-ms <ms>', 'how long one release may take before it counts as failed (retried)', '30000')
}
