#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file.
///
/// Checkpoints are mapped rather than read so that opening one costs nothing until tensors are
/// converted, and a converted tensor's source pages can be dropped by the kernel afterwards.
final class MappedFile: @unchecked Sendable {
    let path: String
    /// The file's bytes; empty (nil base) for an empty file.
    let bytes: UnsafeRawBufferPointer

    /// - Throws: `ModelError.missingFile` when the file cannot be opened,
    ///   `ModelError.malformedCheckpoint` when it is not a regular file or cannot be mapped.
    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ModelError.missingFile(path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw ModelError.malformedCheckpoint(file: path, tensor: nil, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw ModelError.malformedCheckpoint(file: path, tensor: nil, reason: "cannot map the file into memory")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    var count: Int { bytes.count }
}

/// A bounds-checked little-endian cursor over a byte range; every read that would run past the
/// end throws instead of trapping.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int = 0
    /// Names the file in errors.
    let file: String

    var remaining: Int { bytes.count - offset }

    func fail(_ reason: String, tensor: String? = nil) -> ModelError {
        .malformedCheckpoint(file: file, tensor: tensor, reason: reason)
    }

    /// Advances past `count` bytes and returns where they start.
    mutating func take(_ count: Int, what: @autoclosure () -> String) throws -> Int {
        guard count >= 0, count <= remaining else {
            throw fail("\(what()) runs past the end of the file (needs \(count) bytes at offset \(offset), \(remaining) left)")
        }
        defer { offset += count }
        return offset
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let at = try take(MemoryLayout<T>.size, what: what())
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
    }

    /// A GGUF string: `u64` byte length, then UTF-8 bytes (not NUL-terminated).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let length = try read(UInt64.self, what())
        guard length <= UInt64(remaining) else {
            throw fail("\(what()) (string of \(length) bytes at offset \(offset - 8)) runs past the end of the file")
        }
        let at = try take(Int(length), what: what())
        // Invalid UTF-8 is repaired rather than rejected: some vocabularies carry raw byte tokens.
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + Int(length))]), as: UTF8.self)
    }
}
