import ArgumentParser
import Foundation
import RollspecBus

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Generate a CURVE key pair for the bus (Z85 text).",
        discussion: """
            The broker's pair goes in security.brokerPublicKey / brokerSecretKey; each client's \
            in security.clientPublicKey / clientSecretKey, and its public key in the broker's \
            security.allowedClientKeys.
            """)

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        guard CurveKeyPair.isAvailable else { throw CLIError("this libzmq was built without CURVE support") }
        let pair = try CurveKeyPair.generate()
        if json {
            print(String(decoding: try JSONEncoder().encode(pair), as: UTF8.self))
        } else {
            print("public: \(pair.publicKey)\nsecret: \(pair.secretKey)")
        }
    }
}
