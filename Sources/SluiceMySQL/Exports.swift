// The pure protocol layer (packets, handshake, binlog events and values) is a module of its
// own, so the fuzz harness builds it without the network stack; users of this module see it too.
@_exported import SluiceMySQLProtocol
