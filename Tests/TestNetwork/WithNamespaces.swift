import Testing

// Scoped set-up that always cleans up: the namespaces (and everything in
// them) are removed when the body returns, throws, or records a failed
// #expect. A cleanup failure after a successful body is thrown; after a
// failing body it is recorded as an issue and the body's error is rethrown.

/// Runs `body` with one fresh namespace, then destroys it.
public func withNamespace<R>(_ body: (TestNamespace) throws -> R) throws -> R {
    try withNamespaces(count: 1) { try body($0[0]) }
}

/// Runs `body` with two fresh namespaces, then destroys them.
public func withNamespaces<R>(_ body: (TestNamespace, TestNamespace) throws -> R) throws -> R {
    try withNamespaces(count: 2) { try body($0[0], $0[1]) }
}

/// Runs `body` with `count` fresh namespaces, then destroys them all.
public func withNamespaces<R>(count: Int, _ body: ([TestNamespace]) throws -> R) throws -> R {
    let namespaces = try createNamespaces(count)
    let result: R
    do {
        result = try body(namespaces)
    } catch {
        destroyAfterFailure(namespaces)
        throw error
    }
    try destroyAll(namespaces)
    return result
}

/// Async form of `withNamespace`.
public func withNamespace<R>(_ body: (TestNamespace) async throws -> R) async throws -> R {
    try await withNamespaces(count: 1) { try await body($0[0]) }
}

/// Async form of `withNamespaces`.
public func withNamespaces<R>(_ body: (TestNamespace, TestNamespace) async throws -> R) async throws -> R {
    try await withNamespaces(count: 2) { try await body($0[0], $0[1]) }
}

/// Async form of `withNamespaces(count:)`.
public func withNamespaces<R>(count: Int, _ body: ([TestNamespace]) async throws -> R) async throws -> R {
    let namespaces = try createNamespaces(count)
    let result: R
    do {
        result = try await body(namespaces)
    } catch {
        destroyAfterFailure(namespaces)
        throw error
    }
    try destroyAll(namespaces)
    return result
}

/// The two ends of a veth pair and their addresses.
public struct VethPair: Sendable {
    /// The end inside namespace A.
    public let nameA: String
    /// The end inside namespace B.
    public let nameB: String
    /// Address of end A in CIDR form ("10.199.1.1/24").
    public let addressA: String
    /// Address of end B in CIDR form.
    public let addressB: String
    /// Address of end A without the prefix length ("10.199.1.1").
    public var hostA: String { String(addressA.split(separator: "/").first ?? "") }
    /// Address of end B without the prefix length.
    public var hostB: String { String(addressB.split(separator: "/").first ?? "") }
}

/// Creates a veth pair with one end in `a` and the other in `b`, adds the
/// addresses (CIDR) and sets both ends up; runs `body`; deletes the pair
/// (whether the body returned or threw).
public func withVethPair<R>(
    between a: TestNamespace, and b: TestNamespace, addressA: String, addressB: String,
    _ body: (VethPair) throws -> R
) throws -> R {
    let pair = try createVethPair(between: a, and: b, addressA: addressA, addressB: addressB)
    let result: R
    do {
        result = try body(pair)
    } catch {
        _ = try? deleteVethPair(pair, in: a, b)
        throw error
    }
    try deleteVethPair(pair, in: a, b)
    return result
}

/// Async form of `withVethPair`.
public func withVethPair<R>(
    between a: TestNamespace, and b: TestNamespace, addressA: String, addressB: String,
    _ body: (VethPair) async throws -> R
) async throws -> R {
    let pair = try createVethPair(between: a, and: b, addressA: addressA, addressB: addressB)
    let result: R
    do {
        result = try await body(pair)
    } catch {
        _ = try? deleteVethPair(pair, in: a, b)
        throw error
    }
    try deleteVethPair(pair, in: a, b)
    return result
}

/// Creates a veth pair between two namespaces without a scope; the
/// namespaces own the ends, so `destroy()` removes them.
public func createVethPair(
    between a: TestNamespace, and b: TestNamespace, addressA: String, addressB: String
) throws(TestNetworkError) -> VethPair {
    let base = TestNames.linkBaseName()
    let pair = VethPair(nameA: base + "a", nameB: base + "b", addressA: addressA, addressB: addressB)
    // Created directly inside the namespaces: nothing ever appears in the
    // root namespace.
    try runCommand(
        ["ip", "link", "add", pair.nameA, "netns", a.name, "type", "veth",
         "peer", "name", pair.nameB, "netns", b.name],
        timeout: 10
    ).check()
    a.own(pair.nameA)
    b.own(pair.nameB)
    try a.ip(["address", "add", addressA, "dev", pair.nameA])
    try b.ip(["address", "add", addressB, "dev", pair.nameB])
    try a.ip(["link", "set", "dev", pair.nameA, "up"])
    try b.ip(["link", "set", "dev", pair.nameB, "up"])
    return pair
}

private func deleteVethPair(_ pair: VethPair, in a: TestNamespace, _ b: TestNamespace) throws(TestNetworkError) {
    // Deleting one end deletes its peer.
    _ = try? runCommand(["ip", "-n", a.name, "link", "del", "dev", pair.nameA], timeout: 10)
    if a.linkExists(pair.nameA) || b.linkExists(pair.nameB) {
        throw .cleanupFailed("veth \(pair.nameA)/\(pair.nameB) still exists")
    }
}

private func createNamespaces(_ count: Int) throws(TestNetworkError) -> [TestNamespace] {
    precondition(count >= 1, "withNamespaces needs at least one namespace")
    var created: [TestNamespace] = []
    do {
        for _ in 0..<count { created.append(try TestNamespace()) }
    } catch {
        for namespace in created { namespace.destroyQuietly() }
        throw error
    }
    return created
}

private func destroyAll(_ namespaces: [TestNamespace]) throws(TestNetworkError) {
    var firstError: TestNetworkError?
    for namespace in namespaces {
        do { try namespace.destroy() } catch { firstError = firstError ?? error }
    }
    if let firstError { throw firstError }
}

private func destroyAfterFailure(_ namespaces: [TestNamespace]) {
    do {
        try destroyAll(namespaces)
    } catch {
        Issue.record("namespace cleanup after a failing body also failed: \(error)")
    }
}
