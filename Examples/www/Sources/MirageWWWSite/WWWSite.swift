import MirageDevices

/// The slide deck that mirage-www serves: the files of the `Site` folder
/// beside this file, compiled into the program by MirageCrunchPlugin
/// (there is no file system in a unikernel).
public enum WWWSite {
    /// A store holding the deck (`index.html`, `slides/….html`,
    /// `style.css`, `favicon.svg`). Each call decodes every file again:
    /// make it once at start-up and keep it.
    public static func store() -> CompiledKeyValueStore {
        SiteFiles.makeStore()
    }
}
