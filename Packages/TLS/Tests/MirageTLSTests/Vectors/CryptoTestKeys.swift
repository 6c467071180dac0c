// Private keys made once with OpenSSL 3.0 for the provider tests (never used
// anywhere else): the same P-256 key as SEC1 with its EC PARAMETERS block
// and as PKCS#8, the same RSA-2048 key as PKCS#8 and PKCS#1, an Ed25519
// PKCS#8 key and a P-384 key (unsupported).

enum CryptoTestKeys {
    /// `openssl` output: ed.pem
    static let ed25519PKCS8 = """
        -----BEGIN PRIVATE KEY-----
        MC4CAQAwBQYDK2VwBCIEIKQMHNdhZoVNivfvG2s+SZBjhi/4yIIvMG9zLV84fLeJ
        -----END PRIVATE KEY-----
        """
    /// `openssl` output: ec-params-sec1.pem
    static let p256SEC1WithParameters = """
        -----BEGIN EC PARAMETERS-----
        BggqhkjOPQMBBw==
        -----END EC PARAMETERS-----
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIBjHppab8VqFtNhJTGkvyhpHzKqGQca7btBnK5SMlGjcoAoGCCqGSM49
        AwEHoUQDQgAERMMCQgFF6k6+I/hoKWA3laYD1CMUyTy0n5LYNsSJda7BB18PNTyJ
        17yoSv1hHas9Xu8cAnuQRc7M9+6fVzz4sQ==
        -----END EC PRIVATE KEY-----
        """
    /// `openssl` output: ec-pkcs8.pem
    static let p256PKCS8 = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGMemlpvxWoW02ElM
        aS/KGkfMqoZBxrtu0GcrlIyUaNyhRANCAAREwwJCAUXqTr4j+GgpYDeVpgPUIxTJ
        PLSfktg2xIl1rsEHXw81PInXvKhK/WEdqz1e7xwCe5BFzsz37p9XPPix
        -----END PRIVATE KEY-----
        """
    /// `openssl` output: rsa-pkcs8.pem
    static let rsaPKCS8 = """
        -----BEGIN PRIVATE KEY-----
        MIIEuwIBADANBgkqhkiG9w0BAQEFAASCBKUwggShAgEAAoIBAQCWJcpvyNN4E/kT
        eVzvQaXBCTquSAeeBeMnoA0DgN6wASaoUWy5etoVfxVtVAwQeCt+47qUyb4njWyY
        rff3f+Hv/8Elh2GIDgG7HiLxSHB8qUW8Gg4OIBDmsf8GWbSFBOBvApJBXydM9Sz0
        gexQAi+XrinC2q1Y61sfEtH69U+byOv45zs/GqCu9QvfEtjjXcWoLYSec5Z7FzRR
        sEDYo8FKS/O/or/8IR4LDYAHOYp6hBKHN7uI5eALPuW88+DYBsgwdmgjytZmk+z2
        pgGjjX2l6Y2wmLsat6M2Q1oK0K3s+TVA1Zuj/HbuuNwcBbJ3G1GgQCfDIS/6XEnl
        nl2kJBubAgMBAAECggEAM532RAukN0mWfQ1h15aX5w7HL5bvl3Gqr7qj/qpU4+jh
        Y0fqurDzPCSeNyGHrDnDqjGbuP7J8kr6JFraPimmgJ1Jxx8NdnpqOeuYU551nUWM
        BahnYI/Bf619YK+CEaClj0QxB2ww1JIMzFnF5ZN6zQhArw4CPelbQAl2SnH+1izr
        hagcaMXfOrkkZpRNEKcf9bucEG13PfCqjEIKr3b/9u8gQrYSru7dM6ZJdK/gz9Wv
        wTP4s1v/bof+jV3JjwK1LMxMKiRKVv5COpPoT7O9B1jq6PLqJBXrm1wZIZKWO1Mv
        U25ufTBWPZTOzOezlPP02tmfMR6jLPnpssAIrdLRgQKBgQDOq6XLYggZemWaaNCw
        spBobyt4IHQMz2cRFJHFZDpNJWHwiRvBba/vM+/pW3p0t4pZUs5kh+IfnHJRjonj
        6sJsoYtDqAFTB1dcspuBDcbj49RIfg5lrFnwY7GO1UwIHzefZ2OW06Vpa99E9Oya
        /k1Yzcb2XczCPcmWm/jL3tsz4QKBgQC5/GFu8ctruUWHJR8M7qWWhqpDcQEzUkm1
        mgNiDbKFmRK+z9P+kVVXzt9Das4ig4VaIoeiO27wDxY95pkthu6iyOtb3Cjoh7+4
        RoQ7O2WZ1jIPblUfGzyAG6JyITpK+M3wxCHBDSqKXVdko0Na6btLQp38Eu4SHN7M
        r941DZ/++wKBgBzlPOIJy84cIdaL7xm1baFcYbyC9RbRbLyjnpn1oH0my+HAmcPa
        nS2ZmmKLKrzk6JAClt7RbNk0m3sxra/TI+niUEFeXQkJzrokMr/BeFxmf0i/by3i
        AhUtKycoRWAhVTqRTwhIgSkTLv1KLUaiZZgT9Ux+4uEJmITZO9jtSMKhAoGBAIOu
        4EWvSXpSSZowfFWpuvBjFLZ/knwF7U55Z5/LVvUktpMHj3AU8rojLQ0M2DqzqH1z
        KVmCfz/VTsgxN492lAwJ+iqmLQjG5MXSl9lgasWLVRJ76iUGIcYKyu/H+wAOPbIV
        DFklu1MQV8pXll8OUqAs4LMTrCCC9HU0qD4kEX51An8u0d5EDax5FzWDtUd1NeM5
        k2IUWrcR9NQN4S3exdHbe47zBlD4yY24t8abxSd07ciptTVX2SR7Fhys/w48IYb6
        sRTz6/XvCciAWb099Ns2sY5/EBos2sok4jzRHb5kdKQO9R9iUWbJ8yXG0jsa4pFZ
        HqA708H27ZB63q/skCBS
        -----END PRIVATE KEY-----
        """
    /// `openssl` output: rsa-pkcs1.pem
    static let rsaPKCS1 = """
        -----BEGIN RSA PRIVATE KEY-----
        MIIEoQIBAAKCAQEAliXKb8jTeBP5E3lc70GlwQk6rkgHngXjJ6ANA4DesAEmqFFs
        uXraFX8VbVQMEHgrfuO6lMm+J41smK3393/h7//BJYdhiA4Bux4i8UhwfKlFvBoO
        DiAQ5rH/Blm0hQTgbwKSQV8nTPUs9IHsUAIvl64pwtqtWOtbHxLR+vVPm8jr+Oc7
        PxqgrvUL3xLY413FqC2EnnOWexc0UbBA2KPBSkvzv6K//CEeCw2ABzmKeoQShze7
        iOXgCz7lvPPg2AbIMHZoI8rWZpPs9qYBo419pemNsJi7GrejNkNaCtCt7Pk1QNWb
        o/x27rjcHAWydxtRoEAnwyEv+lxJ5Z5dpCQbmwIDAQABAoIBADOd9kQLpDdJln0N
        YdeWl+cOxy+W75dxqq+6o/6qVOPo4WNH6rqw8zwknjchh6w5w6oxm7j+yfJK+iRa
        2j4ppoCdSccfDXZ6ajnrmFOedZ1FjAWoZ2CPwX+tfWCvghGgpY9EMQdsMNSSDMxZ
        xeWTes0IQK8OAj3pW0AJdkpx/tYs64WoHGjF3zq5JGaUTRCnH/W7nBBtdz3wqoxC
        Cq92//bvIEK2Eq7u3TOmSXSv4M/Vr8Ez+LNb/26H/o1dyY8CtSzMTCokSlb+QjqT
        6E+zvQdY6ujy6iQV65tcGSGSljtTL1Nubn0wVj2Uzszns5Tz9NrZnzEeoyz56bLA
        CK3S0YECgYEAzquly2IIGXplmmjQsLKQaG8reCB0DM9nERSRxWQ6TSVh8IkbwW2v
        7zPv6Vt6dLeKWVLOZIfiH5xyUY6J4+rCbKGLQ6gBUwdXXLKbgQ3G4+PUSH4OZaxZ
        8GOxjtVMCB83n2djltOlaWvfRPTsmv5NWM3G9l3Mwj3Jlpv4y97bM+ECgYEAufxh
        bvHLa7lFhyUfDO6lloaqQ3EBM1JJtZoDYg2yhZkSvs/T/pFVV87fQ2rOIoOFWiKH
        ojtu8A8WPeaZLYbuosjrW9wo6Ie/uEaEOztlmdYyD25VHxs8gBuiciE6SvjN8MQh
        wQ0qil1XZKNDWum7S0Kd/BLuEhzezK/eNQ2f/vsCgYAc5TziCcvOHCHWi+8ZtW2h
        XGG8gvUW0Wy8o56Z9aB9JsvhwJnD2p0tmZpiiyq85OiQApbe0WzZNJt7Ma2v0yPp
        4lBBXl0JCc66JDK/wXhcZn9Iv28t4gIVLSsnKEVgIVU6kU8ISIEpEy79Si1GomWY
        E/VMfuLhCZiE2TvY7UjCoQKBgQCDruBFr0l6UkmaMHxVqbrwYxS2f5J8Be1OeWef
        y1b1JLaTB49wFPK6Iy0NDNg6s6h9cylZgn8/1U7IMTePdpQMCfoqpi0IxuTF0pfZ
        YGrFi1USe+olBiHGCsrvx/sADj2yFQxZJbtTEFfKV5ZfDlKgLOCzE6wggvR1NKg+
        JBF+dQJ/LtHeRA2seRc1g7VHdTXjOZNiFFq3EfTUDeEt3sXR23uO8wZQ+MmNuLfG
        m8UndO3IqbU1V9kkexYcrP8OPCGG+rEU8+v17wnIgFm9PfTbNrGOfxAaLNrKJOI8
        0R2+ZHSkDvUfYlFmyfMlxtI7GuKRWR6gO9PB9u2Qet6v7JAgUg==
        -----END RSA PRIVATE KEY-----
        """
    /// `openssl` output: ec384.pem
    static let p384SEC1 = """
        -----BEGIN EC PRIVATE KEY-----
        MIGkAgEBBDAJK0jHljI2UMe9cfKSLyBXYbfsICLel6xPjSuvyqvPT85DEHedyNId
        2EJ8EPwTda6gBwYFK4EEACKhZANiAAS/j+mHnPjEsiiR8BsiwoTOhyiLZhJTEwDd
        drCiltGEXag1KJ5KNFB1t11iZ2JJplFNHXIj/X2lHdIe+Eq1FZM4SzRnDFQxLYrx
        csitskXp21a3tDYN4AFwI+w3Lq/gb58=
        -----END EC PRIVATE KEY-----
        """
}
