/// ShipLog: an embedded, replicated, log-structured storage engine.
/// This module is what applications import; it re-exports the parts.
@_exported import ShipLogStorage
