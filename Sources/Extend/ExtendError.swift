/// Errors of applying image extension Dockerfiles; each names the file, line and instruction
/// where there is one.
public enum ExtendError: Error, CustomStringConvertible, Sendable {
    /// An instruction's arguments could not be understood (wrapped with its place by `at`).
    case syntax(String)
    /// An instruction or form the extender does not apply.
    case unsupported(String)
    /// `file`:`line` `instruction`: what went wrong.
    case instruction(file: String, line: Int, instruction: String, message: String)
    /// A `RUN` exited non-zero.
    case runFailed(file: String, line: Int, command: String, status: Int32)
    /// Something about the environment: a missing tool, no privileges, an I/O failure.
    case environment(String)

    public var description: String {
        switch self {
        case .syntax(let m), .unsupported(let m), .environment(let m):
            return m
        case .instruction(let file, let line, let instruction, let message):
            return "\(file):\(line): \(instruction): \(message)"
        case .runFailed(let file, let line, let command, let status):
            return "\(file):\(line): RUN \(command) exited with status \(status)"
        }
    }

    /// The error placed at an instruction of a file.
    func at(file: String, line: Int, instruction: String) -> ExtendError {
        switch self {
        case .syntax(let m), .unsupported(let m): return .instruction(file: file, line: line, instruction: instruction, message: m)
        default: return self
        }
    }
}
