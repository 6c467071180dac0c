// mirage-crunch: compiles a folder into Swift source for a
// `CompiledKeyValueStore` (MirageDevices), so a unikernel, which has no
// file system, can serve the files. Run by MirageCrunchPlugin at build time.
import Foundation

let usage = """
    usage: mirage-crunch <input-folder> <output.swift> --type-name <Name> \
    [--access internal|package|public] [--no-last-modified]

    Writes <output.swift> defining `enum <Name>` with `makeStore()` and
    `files`: every file under <input-folder> (recursively, sorted, names
    starting with "." skipped), base64 in string literals. Each file's
    modification time is recorded, clamped to $SOURCE_DATE_EPOCH when set;
    --no-last-modified records none. The output is rewritten only when its
    text changes.
    """

struct Options {
    var input: String
    var output: String
    var typeName: String
    var access = "internal"
    var times = ModificationTimes.fromFiles(clamp: nil)
}

func parse(_ arguments: [String], environment: [String: String]) throws(CrunchError) -> Options {
    var positional: [String] = []
    var typeName: String?
    var access = "internal"
    var recordTimes = true
    var i = 0
    func value(_ flag: String) throws(CrunchError) -> String {
        i += 1
        guard i < arguments.count else { throw CrunchError(description: "\(flag) needs a value") }
        return arguments[i]
    }
    while i < arguments.count {
        let a = arguments[i]
        switch a {
        case "--type-name": typeName = try value(a)
        case "--access": access = try value(a)
        case "--no-last-modified": recordTimes = false
        case "-h", "--help": throw CrunchError(description: usage)
        default:
            if a.hasPrefix("-") { throw CrunchError(description: "unknown option \(a)") }
            positional.append(a)
        }
        i += 1
    }
    guard positional.count == 2, let typeName else { throw CrunchError(description: usage) }
    guard Generator.isIdentifier(typeName) else { throw CrunchError(description: "--type-name \(typeName) is not a Swift identifier") }
    guard ["internal", "package", "public"].contains(access) else {
        throw CrunchError(description: "--access must be internal, package or public")
    }
    var options = Options(input: positional[0], output: positional[1], typeName: typeName, access: access)
    if !recordTimes {
        options.times = .omitted
    } else if let epoch = environment["SOURCE_DATE_EPOCH"] {
        guard let clamp = Int64(epoch) else { throw CrunchError(description: "SOURCE_DATE_EPOCH=\(epoch) is not an integer") }
        options.times = .fromFiles(clamp: clamp)
    }
    return options
}

func run() throws(CrunchError) {
    let options = try parse(Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
    let folder = URL(fileURLWithPath: options.input, isDirectory: true)
    let inputs = try Generator.collect(folder, times: options.times)
    let text = Generator.source(typeName: options.typeName, access: options.access,
                                folderName: folder.standardizedFileURL.lastPathComponent, inputs: inputs)
    let data = Data(text.utf8)
    let output = URL(fileURLWithPath: options.output)
    // Leave an unchanged output alone, so its dependants are not rebuilt.
    if let old = try? Data(contentsOf: output), old == data { return }
    do {
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: output, options: .atomic)
    } catch {
        throw CrunchError(description: "cannot write \(output.path): \(error.localizedDescription)")
    }
}

do {
    try run()
} catch {
    FileHandle.standardError.write(Data("mirage-crunch: \(error.description)\n".utf8))
    exit(1)
}
