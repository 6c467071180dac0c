// MirageTLSCrypto is the Linux provider of MirageTLS's protocols; importing it
// brings the engine too, so a program needs one import.
@_exported import MirageTLS
