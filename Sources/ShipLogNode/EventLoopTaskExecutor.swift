import NIOCore

/// A `TaskExecutor` that runs jobs on one SwiftNIO event loop (`loop.execute`).
///
/// A sync append from a task on Swift's global executor crosses two hand-offs between sleeping
/// threads on the primary besides the network: the task to the event loop, and the event loop
/// back to the task when the acknowledgement arrives. A task that prefers this executor
/// (`withTaskExecutorPreference(node.appendExecutor) { ... }`) runs on the node's loop instead:
/// its append hands the batch to the loop without a wake-up and resumes there when the
/// acknowledgement is read, like the blocking floor's one thread per side.
/// What the task does between appends runs on the loop too, delaying the node's I/O: keep it
/// short, and never block in it. The append itself only suspends (an fdatasync runs on the
/// log's own queue; a pwrite into the page cache is a bounded copy).
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    public let loop: any EventLoop

    public init(loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
