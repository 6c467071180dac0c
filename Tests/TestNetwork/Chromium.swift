import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium as a client: takes a screenshot of what a server under
/// test serves, so a test can check the page really rendered (see
/// `PNGImage.count(of:tolerance:)`).
///
/// ```swift
/// @Test(.interop(tools: [Chromium.toolName]))
/// func firstSlide() throws {
///     let shot = try Chromium.screenshot(url: "http://127.0.0.1:\(port)/")
///     let count = try PNGImage(png: shot.png).count(of: RGB(hex: "#2b1055")!)
///     #expect(count.fraction > 0.5, "\(count)")
/// }
/// ```
///
/// One screenshot is one Chromium run (about 1–2 s): a fresh profile in a
/// temporary folder, removed afterwards, so parallel runs never share
/// state. It runs as root (`--no-sandbox`), needs no display, GPU or D-Bus
/// (it logs D-Bus errors on standard error; they are harmless), and sends
/// nothing but the page's own requests: every host name other than the
/// URL's host resolves to "not found" without a DNS query, and background
/// services (component updates, sync, metrics, safe browsing) are off.
/// With `namespace` it runs inside it (`ip netns exec`), e.g. to reach a
/// server behind a tap device whose kernel side is there.
public enum Chromium {
    /// The name to list in `.interop(tools:)` (Debian package `chromium`,
    /// installed by Scripts/install-test-deps).
    public static let toolName = "chromium"

    /// Where the browser is looked for, in order. Debian's
    /// /usr/bin/chromium is a shell wrapper that adds flags from
    /// /etc/chromium.d (remote extensions, GPU rasterisation) and warns
    /// about /dev/shm; the binary behind it is run directly instead.
    public static let candidates = ["/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"]

    /// The first of `candidates` that exists, or nil.
    public static var executablePath: String? {
        candidates.lazy.compactMap { TestEnvironment.toolPath($0) }.first
    }

    /// A finished screenshot.
    public struct Screenshot: Sendable {
        /// The PNG file's bytes (width × height pixels, device scale 1).
        public let png: [UInt8]
        /// Chromium's exit status and output (its log is on stderr).
        public let result: CommandResult
        /// How long the Chromium run took, in seconds.
        public let seconds: Double

        /// The decoded image.
        public func image() throws(TestNetworkError) -> PNGImage {
            try PNGImage(png: png)
        }
    }

    /// Loads `url` in a fresh headless Chromium of `width` × `height` CSS
    /// pixels and returns the screenshot Chromium takes once the page has
    /// loaded.
    ///
    /// - Parameters:
    ///   - url: an http(s) URL; its host (an IP address or a name) is the
    ///     only one Chromium may resolve, its port is allowed even if
    ///     Chromium calls it unsafe (e.g. 6000, 10080).
    ///   - namespace: run Chromium inside this namespace; nil for the
    ///     test's own network namespace.
    ///   - virtualTimeBudget: milliseconds of virtual time to let scripts
    ///     and timers run after load before the shot (for pages that draw
    ///     themselves with JavaScript); nil for none. Virtual: it costs
    ///     little real time.
    ///   - timeout: the hard limit for the Chromium run, in seconds.
    /// - Throws: `.toolNotFound` without Chromium; `.commandFailed` when it
    ///   exits non-zero or times out; `.screenshotFailed` when it wrote no
    ///   screenshot (the page did not load: refused, reset, DNS; an HTTP
    ///   error page *does* load, so check what the image shows).
    public static func screenshot(
        url: String, namespace: TestNamespace? = nil, width: Int = 1024, height: Int = 768,
        virtualTimeBudget: Int? = nil, timeout: Double = 60
    ) throws(TestNetworkError) -> Screenshot {
        guard let executable = executablePath else { throw .toolNotFound(toolName) }
        let directory = try makeRunDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = directory + "/screenshot.png"
        let argv = [executable] + arguments(
            url: url, screenshotPath: output, profileDirectory: directory + "/profile",
            width: width, height: height, virtualTimeBudget: virtualTimeBudget)
        // Crashpad's database, dconf and the font cache go to XDG_CONFIG_HOME
        // and XDG_CACHE_HOME: keep them out of $HOME too.
        let environment = ["XDG_CONFIG_HOME": directory + "/config", "XDG_CACHE_HOME": directory + "/cache"]

        let clock = ContinuousClock()
        let start = clock.now
        let result: CommandResult
        if let namespace {
            result = try namespace.exec(argv, timeout: timeout, environment: environment)
        } else {
            result = try runCommand(argv, timeout: timeout, environment: environment)
        }
        let elapsed = clock.now - start
        try result.check()
        guard let png = readWholeFile(output), !png.isEmpty else {
            throw .screenshotFailed(url: url, reason: failureReason(result.stderr))
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return Screenshot(png: png, result: result, seconds: seconds)
    }

    /// The command-line arguments of one screenshot run (without the
    /// program name). Every flag is needed or guards against something:
    ///
    /// - `--headless=new --no-sandbox`: no display; the sandbox refuses root.
    /// - `--disable-gpu --disable-dev-shm-usage`: software rendering; shared
    ///   memory in the temporary directory, not a small /dev/shm (containers).
    /// - `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE host`: no DNS query
    ///   for anything but the page's own host (Chromium otherwise looks up
    ///   update.googleapis.com, accounts.google.com… at start).
    /// - `--explicitly-allowed-ports=port`: load even a port Chromium
    ///   deems unsafe (it would fail with net::ERR_UNSAFE_PORT).
    /// - background networking, component updates, sync, extensions,
    ///   crash reporting, metrics, domain reliability, phishing detection:
    ///   off, so nothing waits on the network or writes outside the profile.
    /// - `--force-color-profile=srgb --force-device-scale-factor=1
    ///   --hide-scrollbars`: exact colours, exactly width × height pixels.
    public static func arguments(
        url: String, screenshotPath: String, profileDirectory: String,
        width: Int, height: Int, virtualTimeBudget: Int? = nil
    ) -> [String] {
        precondition(width > 0 && height > 0, "a screenshot needs a positive size")
        guard let parsed = URLComponents(string: url), let host = parsed.host, !host.isEmpty,
              let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https"
        else { preconditionFailure("Chromium.screenshot needs an http(s) URL with a host, not \(url)") }
        let port = parsed.port ?? (scheme == "https" ? 443 : 80)
        var arguments = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--metrics-recording-only",
            "--mute-audio",
            "--password-store=basic",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE \(host)",
            "--explicitly-allowed-ports=\(port)",
            "--force-color-profile=srgb",
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
            "--user-data-dir=\(profileDirectory)",
            "--window-size=\(width),\(height)",
            "--screenshot=\(screenshotPath)",
        ]
        if let virtualTimeBudget {
            precondition(virtualTimeBudget > 0, "a virtual time budget is positive")
            arguments.append("--virtual-time-budget=\(virtualTimeBudget)")
        }
        arguments.append(url)
        return arguments
    }

    /// Chromium's own explanation ("Page load failed: net::ERR_…") from its
    /// log, without the D-Bus noise around it; or the end of the log.
    static func failureReason(_ log: String) -> String {
        let lines = log.split(separator: "\n")
        if let line = lines.last(where: { $0.contains("Page load failed") || $0.contains("net::ERR_") }) {
            if let range = line.range(of: "] ") { return String(line[range.upperBound...]) }
            return String(line)
        }
        let interesting = lines.filter { !$0.contains("dbus/") }
        return interesting.isEmpty ? "Chromium wrote no screenshot and logged nothing but D-Bus errors"
            : interesting.suffix(5).joined(separator: "\n")
    }

    /// A fresh `mswt-<pid>-<n>-chromium` folder in the temporary directory
    /// (the suffix lets `SpawnedProcess.removeStaleOutputDirectories` find
    /// it when a killed test process left it behind).
    private static func makeRunDirectory() throws(TestNetworkError) -> String {
        var base = NSTemporaryDirectory()
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        let directory = base + "/\(TestNames.processTag())-\(TestNames.next())-chromium"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .spawnFailed(argv: [toolName], errno: EIO)
        }
        return directory
    }
}
