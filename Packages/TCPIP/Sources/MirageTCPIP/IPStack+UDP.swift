import MirageDevices

extension IPStack {
    func receiveUDP(_ bytes: Span<UInt8>, info: DatagramInfo, now: Instant, quoted: Span<UInt8>?) {
        let datagram: UDPDatagram
        do {
            datagram = try UDPDatagram(checking: bytes, source: info.source, destination: info.destination,
                                       verifyChecksum: !info.checksumVerified)
        } catch {
            if case .badChecksum = error { statistics.droppedBadUDPChecksum += 1 } else { statistics.droppedMalformedUDP += 1 }
            return
        }
        let port = datagram.destinationPort
        if port == DHCPClient.clientPort, dhcpClient != nil, datagram.sourcePort == DHCPClient.serverPort {
            dhcpReceive(datagram.payload, now: now)
            return
        }
        guard let (id, socket) = udpSocket(port: port, address: info.destination) else {
            statistics.droppedNoListener += 1
            // RFC 1122 §4.1.3.1: port unreachable (never for broadcasts,
            // which sendICMPError refuses).
            sendICMPError(type: ICMPv4Message.MessageType.destinationUnreachable,
                          code: ICMPv4Message.UnreachableCode.port, restOfHeader: 0,
                          about: info, payload: bytes, quoted: quoted, now: now)
            return
        }
        statistics.udpDelivered += 1
        socket.handler.datagramReceived(datagram.payload, from: Endpoint(.v4(info.source), datagram.sourcePort),
                                        to: Endpoint(.v4(info.destination), port), on: id)
    }

    /// The socket for `port` that accepts datagrams to `address`: one bound
    /// to that address first, else a wildcard one.
    func udpSocket(port: UInt16, address: IPv4Address) -> (UDPSocketID, UDPSocket)? {
        var wildcard: (UDPSocketID, UDPSocket)? = nil
        for (id, socket) in udpSockets where socket.port == port {
            if socket.address == address { return (id, socket) }
            if socket.address == nil { wildcard = (id, socket) }
        }
        return wildcard
    }

    // MARK: Stack contract: UDP

    /// The address a socket or listener binds to: nil for every local
    /// address (nil or 0.0.0.0 asked), else one of ours.
    func localBinding(_ address: IPAddress?) throws(DeviceError) -> IPv4Address? {
        switch address {
        case nil:
            return nil
        case .v4(let a)?:
            if a == .any { return nil }
            guard a == configuration.ipv4?.address else { throw .addressNotAvailable(.v4(a)) }
            return a
        case .v6(let a)?:
            throw .addressNotAvailable(.v6(a))
        }
    }

    /// `port`, or an ephemeral one (RFC 6056) when it is 0; `inUse` says
    /// which ports conflict with `bound`.
    func choosePort(_ port: UInt16, bound: IPv4Address?, kind: String,
                    inUse: (UInt16) -> Bool) throws(DeviceError) -> UInt16 {
        if port == 0 {
            guard let p = configuration.ephemeralPorts.choose(using: entropy, isInUse: inUse) else {
                throw .resourceExhausted("ephemeral \(kind) ports")
            }
            return p
        }
        if inUse(port) { throw .addressInUse(Endpoint(bound.map { .v4($0) } ?? .v4(.any), port)) }
        return port
    }

    public var localAddresses: [IPAddress] {
        configuration.ipv4.map { [.v4($0.address)] } ?? []
    }

    public func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        let bound = try localBinding(address)
        guard udpSockets.count < configuration.maximumUDPSockets else { throw .resourceExhausted("UDP sockets") }
        let dhcpPort = dhcpClient != nil ? DHCPClient.clientPort : nil
        let chosen = try choosePort(port, bound: bound, kind: "UDP") { p in
            p == dhcpPort || udpSockets.values.contains {
                $0.port == p && ($0.address == nil || bound == nil || $0.address == bound)
            }
        }
        let id = UDPSocketID(rawValue: nextSocketID)
        nextSocketID &+= 1
        udpSockets[id] = UDPSocket(port: chosen, address: bound, handler: handler)
        return id
    }

    public func localEndpoint(of socket: UDPSocketID) -> Endpoint? {
        guard let s = udpSockets[socket] else { return nil }
        return Endpoint(.v4(s.address ?? configuration.ipv4?.address ?? .any), s.port)
    }

    public func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        guard let s = udpSockets[socket] else { throw .unknownHandle }
        guard case .v4(let address) = destination.address else { throw .networkUnreachable(destination.address) }
        let length = payload.count
        guard length <= UDPHeader.maximumPayloadLength - IPv4Header.length else {
            throw .messageTooLarge(size: length, limit: UDPHeader.maximumPayloadLength - IPv4Header.length)
        }
        guard let source = s.address ?? configuration.ipv4?.address else { throw .networkUnreachable(destination.address) }
        let header = UDPHeader(sourcePort: s.port, destinationPort: destination.port, payloadLength: length)
        do {
            try sendIPv4(to: address, from: source, protocol: IPProtocol.udp, payloadLength: UDPHeader.length + length) { buffer, offset in
                buffer.copy(payload, to: offset + UDPHeader.length)
                header.emit(into: &buffer, at: offset, source: source, destination: address)
            }
        } catch {
            throw deviceError(error)
        }
        statistics.udpSent += 1
    }

    public func closeUDP(_ socket: UDPSocketID) {
        udpSockets[socket] = nil
    }
}
