// Replication: the embeddable `Node`, its configuration and status, and the protocol's types
// (`NodeID`, `ReplicationMode`, `AckLevel`, `ReplicationConfiguration`).
@_exported import ShipLogNode
