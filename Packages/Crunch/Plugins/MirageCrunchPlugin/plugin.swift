// MirageCrunchPlugin: compiles a target's `Site` or `Crunch` folder into
// the target, as a `CompiledKeyValueStore` (MirageDevices).
//
// For each folder named exactly `Site` or `Crunch` directly inside the
// target's source directory, it runs `mirage-crunch` with every file of the
// folder (recursively, names starting with "." skipped — the tool's own
// rule) as inputs and one generated Swift file as output, defining
// `internal enum SiteFiles` (or `CrunchFiles`) with `makeStore()` and
// `files`. Editing, adding or removing a file regenerates it.
//
// The target must depend on MirageDevices, and should `exclude` the folder
// so SwiftPM does not complain about unhandled files.
import Foundation
import PackagePlugin

@main
struct MirageCrunchPlugin: BuildToolPlugin {
    /// The folder names the plugin looks for, in the target's directory.
    static let folderNames = ["Site", "Crunch"]

    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let target = target as? SourceModuleTarget else { return [] }
        let tool = try context.tool(named: "mirage-crunch")
        var commands: [Command] = []
        for name in Self.folderNames {
            let folder = target.directoryURL.appending(path: name, directoryHint: .isDirectory)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.path(), isDirectory: &isDirectory),
                  isDirectory.boolValue else { continue }
            let typeName = name + "Files"
            let output = context.pluginWorkDirectoryURL.appending(path: typeName + ".swift")
            var environment: [String: String] = [:]
            if let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"] {
                environment["SOURCE_DATE_EPOCH"] = epoch
            }
            commands.append(.buildCommand(
                displayName: "Crunching \(target.name)/\(name) into \(typeName)",
                executable: tool.url,
                arguments: [folder.path(), output.path(), "--type-name", typeName],
                environment: environment,
                // The folder itself too, so that adding or removing a file
                // (which changes the folder's mtime) reruns the tool.
                inputFiles: [folder] + files(under: folder),
                outputFiles: [output]
            ))
        }
        return commands
    }

    /// Every file under `folder` that mirage-crunch reads, and the folders
    /// between, skipping names starting with ".".
    private func files(under folder: URL) -> [URL] {
        var out: [URL] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path())) ?? []
        for name in names.sorted() where !name.hasPrefix(".") {
            let url = folder.appending(path: name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path(), isDirectory: &isDirectory) else { continue }
            out.append(url)
            if isDirectory.boolValue { out += files(under: url) }
        }
        return out
    }
}
