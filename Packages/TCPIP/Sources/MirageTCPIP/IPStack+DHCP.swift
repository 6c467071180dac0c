import MirageDevices

extension IPStack {
    /// The DHCP lease held, if the stack runs a DHCP client and has one.
    public var dhcpLease: DHCPLease? { dhcpClient?.lease }
    /// The DHCP client's state name ("selecting", "bound", …), if it runs.
    public var dhcpState: String? { dhcpClient?.stateName }

    func dhcpStart() {
        guard var client = dhcpClient else { return }
        let actions = client.start(now: clock.now())
        dhcpClient = client
        performDHCP(actions)
    }

    func dhcpReceive(_ payload: Span<UInt8>, now: Instant) {
        guard var client = dhcpClient else { return }
        let actions = client.receive(payload, now: now)
        dhcpClient = client
        performDHCP(actions)
        rearmTimer()
    }

    func dhcpTimer(now: Instant) {
        guard var client = dhcpClient, let due = client.nextDeadline, due <= now else { return }
        let actions = client.timerFired(now: now)
        dhcpClient = client
        performDHCP(actions)
    }

    func performDHCP(_ actions: [DHCPClient.Action]) {
        for action in actions {
            switch action {
            case .broadcast(let payload, let source):
                sendDHCP(payload, to: .broadcast, from: source)
            case .unicast(let payload, let server):
                sendDHCP(payload, to: server, from: configuration.ipv4?.address ?? .any)
            case .bind(let lease):
                leaseMTU = lease.mtu
                setIPv4(lease.configuration)
            case .unbind:
                leaseMTU = nil
                setIPv4(nil)
            case .renewed(let lease):
                configurationHandler?.dhcpLeaseRenewed(lease)
            }
        }
    }

    func sendDHCP(_ payload: [UInt8], to destination: IPv4Address, from source: IPv4Address) {
        let length = payload.count
        let header = UDPHeader(sourcePort: DHCPClient.clientPort, destinationPort: DHCPClient.serverPort, payloadLength: length)
        do {
            try sendIPv4(to: destination, from: source, protocol: IPProtocol.udp, payloadLength: UDPHeader.length + length) { buffer, offset in
                for i in 0..<length { buffer[offset + UDPHeader.length + i] = payload[i] }
                header.emit(into: &buffer, at: offset, source: source, destination: destination)
            }
        } catch {
            statistics.transmitDropped += 1
        }
    }
}
