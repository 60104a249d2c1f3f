import Testing
@testable import ShipLogProtocol

/// Runs a connector and a listener against each other through the codec; returns what each reported.
func shake(connectorKey: [UInt8], listenerKey: [UInt8], allowed: Set<NodeID>? = nil)
    -> (connector: [Handshake.Action], listener: [Handshake.Action]) {
    var c = Handshake(side: .connector, nodeID: NodeID(2), clusterKey: connectorKey, nonce: Array(repeating: 1, count: 32))
    var l = Handshake(side: .listener, nodeID: NodeID(1), clusterKey: listenerKey, nonce: Array(repeating: 2, count: 32), allowedPeers: allowed)
    var cOut: [Handshake.Action] = [], lOut: [Handshake.Action] = []
    #expect(l.start() == [])
    var toListener = c.start(), toConnector: [Handshake.Action] = []
    cOut += toListener
    for _ in 0..<4 {
        for case .send(let frame) in toListener {
            let decoded = FrameCodec.decode(FrameCodec.encode(frame), maxFrameBytes: 1 << 20)
            guard case .frame(let f, _) = decoded else { Issue.record("\(decoded)"); continue }
            let out = l.received(f); lOut += out; toConnector += out
        }
        toListener = []
        for case .send(let frame) in toConnector {
            let out = c.received(frame); cOut += out; toListener += out
        }
        toConnector = []
    }
    return (cOut, lOut)
}

@Suite struct HandshakeTests {
    let key = Array("a shared cluster key".utf8)

    @Test func bothSidesAuthenticateWithTheSameKey() {
        let (c, l) = shake(connectorKey: key, listenerKey: key, allowed: [NodeID(2)])
        #expect(c.contains(.authenticated(peer: NodeID(1))))
        #expect(l.contains(.authenticated(peer: NodeID(2))))
    }

    @Test func aWrongKeyFailsOnTheConnectorFirst() {
        let (c, l) = shake(connectorKey: key, listenerKey: Array("another key".utf8))
        #expect(c.last == .close(.authenticationFailed, message: "node 1 did not prove the cluster key: the two nodes' cluster keys differ"))
        #expect(!l.contains(.authenticated(peer: NodeID(2))))
    }

    @Test func anUnlistedPeerIsRefused() {
        let (_, l) = shake(connectorKey: key, listenerKey: key, allowed: [NodeID(7)])
        guard case .close(.authenticationFailed, _) = l.last else { Issue.record("\(l)"); return }
    }

    @Test func aForgedProofAndReplaysAreRefused() {
        var l = Handshake(side: .listener, nodeID: NodeID(1), clusterKey: key, nonce: Array(repeating: 2, count: 32))
        let hello = Frame.hello(.init(protocolVersion: 1, nodeID: NodeID(2), nonce: Array(repeating: 1, count: 32)))
        guard case .send(.challenge(let challenge)) = l.received(hello).first else { Issue.record("no challenge"); return }
        // Replaying the listener's own MAC as the proof fails (the labels differ).
        guard case .close(.authenticationFailed, _) = l.received(.proof(.init(mac: challenge.mac))).first else {
            Issue.record("reflected MAC accepted"); return
        }
        // A duplicated hello before the proof is unexpected.
        var l2 = Handshake(side: .listener, nodeID: NodeID(1), clusterKey: key, nonce: Array(repeating: 2, count: 32))
        _ = l2.received(hello)
        guard case .close(.unexpectedFrame, _) = l2.received(hello).first else { Issue.record("duplicate hello accepted"); return }
        // Replication frames before authentication close the connection.
        var l3 = Handshake(side: .listener, nodeID: NodeID(1), clusterKey: key, nonce: Array(repeating: 2, count: 32))
        guard case .close(.unexpectedFrame, _) = l3.received(.statusRequest).first else { Issue.record("accepted"); return }
        // After authentication the handshake accepts nothing more.
        var c = Handshake(side: .connector, nodeID: NodeID(2), clusterKey: key, nonce: Array(repeating: 1, count: 32))
        _ = c.start()
        var l4 = Handshake(side: .listener, nodeID: NodeID(1), clusterKey: key, nonce: Array(repeating: 2, count: 32))
        guard case .send(let ch) = l4.received(hello).first, case .send(let proof) = c.received(ch).first else { Issue.record("no proof"); return }
        #expect(l4.received(proof) == [.authenticated(peer: NodeID(2))])
        guard case .close(.unexpectedFrame, _) = l4.received(proof).first else { Issue.record("replayed proof accepted"); return }
    }

    @Test func wrongNonceLengthAndVersionAreRefused() {
        var l = Handshake(side: .listener, nodeID: NodeID(1), clusterKey: key, nonce: Array(repeating: 2, count: 32))
        guard case .close(.authenticationFailed, _) = l.received(.hello(.init(protocolVersion: 1, nodeID: NodeID(2), nonce: [1, 2, 3]))).first else {
            Issue.record("short nonce accepted"); return
        }
        var l2 = Handshake(side: .listener, nodeID: NodeID(1), clusterKey: key, nonce: Array(repeating: 2, count: 32))
        guard case .close(.protocolVersion, _) = l2.received(.hello(.init(protocolVersion: 2, nodeID: NodeID(2), nonce: Array(repeating: 1, count: 32)))).first else {
            Issue.record("version 2 accepted"); return
        }
        var c = Handshake(side: .connector, nodeID: NodeID(2), clusterKey: key, nonce: Array(repeating: 1, count: 32))
        _ = c.start()
        guard case .close(.authenticationFailed, _) = c.received(.challenge(.init(nodeID: NodeID(1), nonce: [0], mac: []))).first else {
            Issue.record("short challenge accepted"); return
        }
    }
}
