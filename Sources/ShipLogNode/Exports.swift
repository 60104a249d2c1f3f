@_exported import ShipLogProtocol
