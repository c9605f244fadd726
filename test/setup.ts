// Every test process gets the Node 20 polyfills libp2p needs.
import '@tally/core'
