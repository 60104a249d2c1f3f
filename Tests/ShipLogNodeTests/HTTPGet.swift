import NIOCore
import NIOPosix

/// GETs `path` from 127.0.0.1:`port` over HTTP/1.0 and returns the whole response as text.
func httpGet(port: Int, path: String) async throws -> String {
    let collected = NIOLoopBoundBox<[UInt8]?>.makeEmptyBox(eventLoop: MultiThreadedEventLoopGroup.singleton.next())
    let loop = collected.eventLoop
    let channel = try await ClientBootstrap(group: loop)
        .connectTimeout(.seconds(5))
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(Collector(box: collected))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await channel.closeFuture.get() }
        group.addTask { try await Task.sleep(for: .seconds(10)); throw TimedOut(what: "the HTTP response from port \(port)") }
        try await group.next()
        group.cancelAll()
    }
    return try await loop.submit { String(decoding: collected.value ?? [], as: UTF8.self) }.get()
}

private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let box: NIOLoopBoundBox<[UInt8]?>
    init(box: NIOLoopBoundBox<[UInt8]?>) { self.box = box }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        box.value = (box.value ?? []) + Array(buffer.readableBytesView)
    }
}
