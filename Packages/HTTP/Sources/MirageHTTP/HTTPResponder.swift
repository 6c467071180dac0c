/// Where a server application sends its answers: `HTTPServer` over a
/// stack, or anything else that frames responses (a test double, later a
/// TLS-wrapped server).
public protocol HTTPResponder: AnyObject {
    /// Starts a response whose body follows with `writeBody`.
    func startResponse(_ exchange: HTTPExchange, head: HTTPResponseHead, bodyLength: HTTPBodyLength) throws(HTTPError)
    /// Adds body bytes (always taken); false asks the caller to wait for
    /// `responseWritable` before writing more.
    func writeBody(_ exchange: HTTPExchange, _ bytes: Span<UInt8>) throws(HTTPError) -> Bool
    /// Ends the response.
    func finishResponse(_ exchange: HTTPExchange, trailers: HTTPFields) throws(HTTPError)
}

extension HTTPResponder {
    /// A whole response with a Content-Length.
    public func respond(_ exchange: HTTPExchange, head: HTTPResponseHead, body: Span<UInt8>) throws(HTTPError) {
        try startResponse(exchange, head: head, bodyLength: .known(body.count))
        _ = try writeBody(exchange, body)
        try finishResponse(exchange, trailers: HTTPFields())
    }

    /// A whole response from a status, fields and body bytes.
    public func respond(_ exchange: HTTPExchange, status: HTTPStatus, fields: HTTPFields = HTTPFields(), body: [UInt8] = []) throws(HTTPError) {
        try respond(exchange, head: HTTPResponseHead(status: status, fields: fields), body: body.span)
    }
}
