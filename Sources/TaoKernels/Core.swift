import CDNNL

/// A failed oneDNN call: which call and oneDNN's status code.
public struct KernelError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var status: Int32
    public var description: String { "oneDNN \(call) failed with status \(status)\(status == 3 ? " (unimplemented: no kernel for these shapes/formats)" : "")" }
}

@inline(__always)
func check(_ s: dnnl_status_t, _ call: @autoclosure () -> String) throws(KernelError) {
    if s != dnnl_success { throw KernelError(call: call(), status: Int32(bitPattern: s.rawValue)) }
}

/// The CPU engine and the one stream all primitives run on.
public final class DNNL: @unchecked Sendable {
    public static let shared = DNNL()
    let engine: dnnl_engine_t
    let stream: dnnl_stream_t

    private init() {
        var e: dnnl_engine_t?
        precondition(dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success, "oneDNN: cannot create the CPU engine")
        engine = e!
        var s: dnnl_stream_t?
        precondition(dnnl_stream_create(&s, engine, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success, "oneDNN: cannot create a stream")
        stream = s!
    }

    /// Waits for all submitted primitives (the CPU stream is in order and synchronous in practice).
    public func wait() { dnnl_stream_wait(stream) }

    /// The instruction set oneDNN dispatches to (e.g. "avx512_core_vnni").
    public var isaName: String {
        let isa = dnnl_get_effective_cpu_isa()
        switch isa {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx2: return "avx2"
        default: return "isa(\(isa.rawValue))"
        }
    }
}

/// Element types used by tao-swift.
public enum DataType: Sendable {
    case f32, s8, u8, s32, bf16
    var raw: dnnl_data_type_t {
        switch self { case .f32: dnnl_f32; case .s8: dnnl_s8; case .u8: dnnl_u8; case .s32: dnnl_s32; case .bf16: dnnl_bf16 }
    }
}

/// Layout names: `plain` is row-major for any rank; `any` lets a primitive choose.
public enum Layout: Sendable {
    case any, plain
    /// Channels-last for rank 4 (acdb).
    case nhwc
    /// Channels in blocks of 8 for rank 4 (nChw8c, aBcd8b): AVX2's activation layout.
    case nChw8c
    /// Channels in blocks of 16 for rank 4 (nChw16c, aBcd16b): AVX-512's activation layout.
    case nChw16c
    func tag(rank: Int) -> dnnl_format_tag_t {
        switch self {
        case .any: return dnnl_format_tag_any
        case .nhwc: return dnnl_acdb
        case .nChw8c: return dnnl_aBcd8b
        case .nChw16c: return dnnl_aBcd16b
        case .plain:
            switch rank {
            case 1: return dnnl_a
            case 2: return dnnl_ab
            case 3: return dnnl_abc
            case 4: return dnnl_abcd
            case 5: return dnnl_abcde
            default: return dnnl_abcdef
            }
        }
    }
}

/// A oneDNN memory descriptor: dims, data type and physical layout (possibly blocked).
public struct MemoryDesc: @unchecked Sendable, Equatable, CustomStringConvertible {
    public var raw: dnnl_memory_desc_t

    public init(raw: dnnl_memory_desc_t) { self.raw = raw }

    /// The same dims and layout with another data type (for reading a buffer as another int8 type).
    public func with(type: DataType) -> MemoryDesc {
        var r = raw
        r.data_type = type.raw
        return MemoryDesc(raw: r)
    }

    public init(_ dims: [Int], _ layout: Layout = .plain, type: DataType = .f32) {
        var md = dnnl_memory_desc_t()
        let d = dims.map { Int64($0) }
        let s = dnnl_memory_desc_init_by_tag(&md, Int32(dims.count), d, type.raw, layout.tag(rank: dims.count))
        precondition(s == dnnl_success, "memory desc \(dims)")
        raw = md
    }

    /// Row-major layout with explicit strides (a view into a larger buffer).
    public init(dims: [Int], strides: [Int], type: DataType = .f32) {
        var md = dnnl_memory_desc_t()
        let s = dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims.map { Int64($0) }, type.raw, strides.map { Int64($0) })
        precondition(s == dnnl_success, "strided memory desc \(dims)")
        raw = md
    }

    public var dims: [Int] {
        withUnsafeBytes(of: raw.dims) { b in Array(b.bindMemory(to: Int64.self).prefix(Int(raw.ndims))).map { Int($0) } }
    }
    public var rank: Int { Int(raw.ndims) }
    /// Bytes needed, padding of blocked layouts included.
    public var byteCount: Int { var r = raw; return dnnl_memory_desc_get_size(&r) }
    public var isZero: Bool { raw.ndims == 0 }

    /// A region of this descriptor (same layout) of size `dims` starting at `offsets`.
    public func submemory(dims: [Int], offsets: [Int]) throws(KernelError) -> MemoryDesc {
        var out = dnnl_memory_desc_t()
        var parent = raw
        try check(dnnl_memory_desc_init_submemory(&out, &parent, dims.map { Int64($0) }, offsets.map { Int64($0) }), "submemory \(dims) at \(offsets)")
        return MemoryDesc(raw: out)
    }

    /// The same bytes with the axes reordered: axis i becomes axis `perm[i]` (oneDNN's permute_axes).
    public func permuted(_ perm: [Int]) throws(KernelError) -> MemoryDesc {
        var out = dnnl_memory_desc_t()
        var parent = raw
        try check(dnnl_memory_desc_permute_axes(&out, &parent, perm.map { Int32($0) }), "permute axes \(perm)")
        return MemoryDesc(raw: out)
    }

    /// The same bytes seen with other dims (plain layouts only).
    public func reshaped(_ dims: [Int]) throws(KernelError) -> MemoryDesc {
        var out = dnnl_memory_desc_t()
        var parent = raw
        try check(dnnl_memory_desc_reshape(&out, &parent, Int32(dims.count), dims.map { Int64($0) }), "reshape to \(dims)")
        return MemoryDesc(raw: out)
    }

    public static func == (a: MemoryDesc, b: MemoryDesc) -> Bool {
        var x = a.raw, y = b.raw
        return dnnl_memory_desc_equal(&x, &y) != 0
    }

    /// Whether this is row-major with no padding or blocking.
    public var isPlain: Bool { self == MemoryDesc(dims, .plain) }
    /// The element type (nil for one tao-swift does not use).
    public var dataType: DataType? { [DataType.f32, .s8, .u8, .s32, .bf16].first { $0.raw == raw.data_type } }
    /// Whether this is oneDNN's opaque Winograd weights format (filled only by reorders from fp32).
    public var isWinograd: Bool { raw.format_kind == dnnl_format_kind_wino }

    public var description: String { "md\(dims)\(isPlain ? "" : "(blocked)")" }
}

/// A buffer with a descriptor: allocated by oneDNN, wrapping caller-owned storage, or deferred
/// (bound later to a slice of a planned arena).
public final class Memory: @unchecked Sendable {
    public let desc: MemoryDesc
    let handle: dnnl_memory_t
    /// The bound buffer (nil while a deferred memory is unbound).
    public private(set) var raw: UnsafeMutableRawPointer?

    /// Allocates zeroed memory for `desc`.
    public init(_ desc: MemoryDesc) {
        self.desc = desc
        var m: dnnl_memory_t?
        var d = desc.raw
        precondition(dnnl_memory_create(&m, &d, DNNL.shared.engine, tao_dnnl_memory_allocate()) == dnnl_success, "allocating \(desc)")
        handle = m!
        var p: UnsafeMutableRawPointer?
        dnnl_memory_get_data_handle(handle, &p)
        raw = p
        p?.initializeMemory(as: UInt8.self, repeating: 0, count: desc.byteCount)
    }

    /// Wraps caller-owned storage, which must outlive this object.
    public init(_ desc: MemoryDesc, wrapping ptr: UnsafeMutableRawPointer) {
        self.desc = desc
        var m: dnnl_memory_t?
        var d = desc.raw
        precondition(dnnl_memory_create(&m, &d, DNNL.shared.engine, ptr) == dnnl_success, "wrapping \(desc)")
        handle = m!
        raw = ptr
    }

    /// A memory with no buffer yet; call `bind` before any primitive runs on it.
    public init(deferred desc: MemoryDesc) {
        self.desc = desc
        var m: dnnl_memory_t?
        var d = desc.raw
        precondition(dnnl_memory_create(&m, &d, DNNL.shared.engine, nil) == dnnl_success, "deferred \(desc)")
        handle = m!
    }

    /// Points this memory at caller-owned storage of at least `byteCount` bytes.
    public func bind(_ ptr: UnsafeMutableRawPointer) {
        precondition(dnnl_memory_set_data_handle(handle, ptr) == dnnl_success, "binding \(desc)")
        raw = ptr
    }

    deinit { dnnl_memory_destroy(handle) }

    public var pointer: UnsafeMutableRawPointer { raw! }
    public var floats: UnsafeMutablePointer<Float> { raw!.assumingMemoryBound(to: Float.self) }
    public var byteCount: Int { desc.byteCount }

    public func zero() { pointer.initializeMemory(as: UInt8.self, repeating: 0, count: desc.byteCount) }
}

/// 64-byte aligned storage owned by a plan (an arena or a persistent buffer).
public final class Buffer: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 64))
    }
    deinit { pointer.deallocate() }
}
