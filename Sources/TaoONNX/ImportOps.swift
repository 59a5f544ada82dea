import Foundation
import TaoGraph

// The ops that exporters write beside a CNN's layers — shape arithmetic (Gather, Range,
// ConstantOfShape, comparisons, Where, Expand, Tile on constants and shape vectors), reductions,
// n-ary Sum / Mean / Max / Min, InstanceNormalization, LRN and GELU's Erf pattern — each folded at
// import or written with the IR's own ops. What needs more is refused with the reason.
extension ONNXImport.Reader {
    static let moreOps: Set<String> = [
        "Gather", "ConstantOfShape", "Range", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "Where",
        "Expand", "Tile", "Sum", "Mean", "Max", "Min", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
        "InstanceNormalization", "LRN", "Erf", "Gelu", "ArgMax", "ArgMin", "TopK", "NonMaxSuppression", "RoiAlign",
    ]

    /// Ops that run after the network (`ONNXPostStep`): taken where their results are the model's outputs.
    static let tailOps: Set<String> = ["ArgMax", "ArgMin", "TopK", "NonMaxSuppression", "RoiAlign"]

    static func dataInputs(_ n: Onnx_NodeProto) -> [String] {
        switch n.opType {
        case "NonMaxSuppression": Array(n.input.prefix(2))
        case "RoiAlign": Array(n.input.prefix(3))
        default: [n.input[0]]
        }
    }

    /// The model's post-network ops, each checked to make only outputs of the model.
    func tailNodes() throws -> [Onnx_NodeProto] {
        var readers: [String: [String]] = [:]
        for n in graph.node { for i in n.input { readers[i, default: []].append(n.name.isEmpty ? n.opType : n.name) } }
        let tail = graph.node.filter { Self.tailOps.contains($0.opType) }
        for t in tail {
            for o in t.output where !o.isEmpty {
                if let r = readers[o] {
                    throw fail("\(t.opType) '\(t.name)' feeds other nodes (\(r.prefix(3).joined(separator: ", "))): it cannot be trained through and runs after the "
                               + "network at inference, so it is taken only where its results are the model's outputs")
                }
            }
        }
        return tail
    }

    /// The post step of a tail node, its data read from the network's outputs `names`.
    mutating func postStep(_ n: Onnx_NodeProto, _ names: [String]) throws -> ONNXPostStep {
        let inputs: [ONNXPostStep.Input] = Self.dataInputs(n).map { name in
            if let c = folded(name) { return .constant(ONNXArray(dims: c.dims, values: c.floats)) }
            return .network(names.firstIndex(of: name)!)
        }
        let rank: Int = switch inputs[0] {
        case .network(let k): b.shape(outputs[k]).rank + 1
        case .constant(let a): a.dims.count
        }
        func axis(_ d: Int) throws -> Int {
            let given = int(n, "axis", d), a = given < 0 ? given + rank : given
            guard a >= 0, a < rank else { throw fail("\(n.opType) '\(n.name)': axis \(given) of a rank-\(rank) input") }
            return a
        }
        func scalar(_ k: Int) throws -> Float? {
            guard n.input.count > k, !n.input[k].isEmpty else { return nil }
            guard let c = folded(n.input[k]), let v = c.floats.first else { throw fail("\(n.opType) '\(n.name)': input \(k) must be a constant") }
            return v
        }
        let kind: ONNXPostStep.Kind
        switch n.opType {
        case "ArgMax", "ArgMin":
            kind = .argMax(axis: try axis(0), keepDims: int(n, "keepdims", 1) == 1, selectLast: int(n, "select_last_index", 0) == 1, smallest: n.opType == "ArgMin")
        case "TopK":
            guard let k = try scalar(1).map({ Int($0) }) ?? attr(n, "k").map({ Int($0.i) }) else { throw fail("TopK '\(n.name)': no k") }
            kind = .topK(axis: try axis(-1), k: k, largest: int(n, "largest", 1) == 1)
        case "RoiAlign":
            // Opset 16's coordinate mode; opset 10 has none and does not shift by half a pixel.
            let halfPixel = string(n, "coordinate_transformation_mode", opset >= 16 ? "half_pixel" : "output_half_pixel") == "half_pixel"
            guard ["avg", "max"].contains(string(n, "mode", "avg")) else { throw fail("RoiAlign '\(n.name)': mode \(string(n, "mode", "")) (avg or max)") }
            kind = .roiAlign(max: string(n, "mode", "avg") == "max", height: int(n, "output_height", 1), width: int(n, "output_width", 1),
                             samplingRatio: int(n, "sampling_ratio", 0), spatialScale: float(n, "spatial_scale", 1), halfPixel: halfPixel)
        default:
            kind = .nonMaxSuppression(maxPerClass: Int(try scalar(2) ?? 0), iou: try scalar(3) ?? 0, scoreThreshold: try scalar(4) ?? -.infinity,
                                      centerPointBox: int(n, "center_point_box", 0) == 1)
        }
        notes.append("\(n.opType) '\(n.name)' runs after the network, at inference only (it cannot be trained through): "
                     + "training and evaluation use the network's outputs before it (\(Self.dataInputs(n).joined(separator: ", ")))")
        return ONNXPostStep(kind: kind, node: n.name, opType: n.opType, inputs: inputs, outputs: n.output)
    }

    /// Every op the importer takes.
    static var claimed: Set<String> { supported.union(moreOps) }

    /// A constant, or a shape vector whose every entry is known (the batch's is not), as a constant.
    func folded(_ name: String) -> ONNXImport.Constant? {
        switch env[name] {
        case .constant(let c)?: return c
        case .shape(let s)? where s.allSatisfy({ $0 != nil }):
            let v = s.map { Int64($0!) }
            return ONNXImport.Constant(dims: [v.count], floats: v.map { Float($0) }, ints: v)
        default: return nil
        }
    }

    static func make(_ dims: [Int], _ floats: [Float]) -> ONNXImport.Constant {
        ONNXImport.Constant(dims: dims, floats: floats, ints: floats.map { $0.isFinite ? Int64(clamping: Int($0.rounded(.towardZero))) : 0 })
    }

    /// Handles `n` when it is one of `moreOps`; false when it is not.
    mutating func convertMore(_ n: Onnx_NodeProto, _ name: String) throws -> Bool {
        let out = n.output.first ?? ""
        switch n.opType {
        case "Gather": env[out] = try gather(n, name)
        case "ConstantOfShape":
            guard let shape = folded(n.input[0]) else { throw fail("ConstantOfShape '\(n.name)': the shape must be known at import (it depends on the batch size)") }
            let value = attr(n, "value").flatMap { $0.hasT ? Self.constant($0.t) : nil }?.floats.first ?? 0
            let dims = shape.ints.map { Int($0) }
            env[out] = .constant(Self.make(dims, [Float](repeating: value, count: dims.reduce(1, *))))
        case "Range":
            guard let s = folded(n.input[0]), let l = folded(n.input[1]), let d = folded(n.input[2]), let start = s.floats.first, let limit = l.floats.first,
                  let delta = d.floats.first, delta != 0 else { throw fail("Range '\(n.name)': start, limit and delta must be constants (delta not 0)") }
            let count = max(Int(((limit - start) / delta).rounded(.up)), 0)
            env[out] = .constant(Self.make([count], (0..<count).map { start + Float($0) * delta }))
        case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual":
            guard let a = folded(n.input[0]), let c = folded(n.input[1]) else { env[out] = .tensor(try compare(n, name)); return true }
            let f: (Float, Float) -> Float = switch n.opType {
            case "Equal": { $0 == $1 ? 1 : 0 }
            case "Less": { $0 < $1 ? 1 : 0 }
            case "Greater": { $0 > $1 ? 1 : 0 }
            case "LessOrEqual": { $0 <= $1 ? 1 : 0 }
            default: { $0 >= $1 ? 1 : 0 }
            }
            guard let r = Self.broadcast(a, c, f) else { throw fail("\(n.opType) '\(n.name)': shapes \(a.dims) and \(c.dims) do not broadcast") }
            env[out] = .constant(r)
        case "Not":
            guard let a = folded(n.input[0]) else {
                // Of a comparison's 1s and 0s: 1 − x.
                env[out] = .tensor(b.activation(try tensor(n.input[0], n), .linear(alpha: -1, beta: 1), name))
                return true
            }
            env[out] = .constant(Self.make(a.dims, a.floats.map { $0 == 0 ? 1 : 0 }))
        case "Where":
            guard let cond = folded(n.input[0]), let x = folded(n.input[1]), let y = folded(n.input[2]) else {
                env[out] = .tensor(try choose(n, name))
                return true
            }
            // where(c, x, y) = c·x + (1 − c)·y elementwise, with numpy broadcasting of all three.
            guard let cx = Self.broadcast(cond, x, { $0 != 0 ? $1 : 0 }), let cy = Self.broadcast(cond, y, { $0 != 0 ? 0 : $1 }),
                  let r = Self.broadcast(cx, cy, { $0 + $1 }) else { throw fail("Where '\(n.name)': shapes \(cond.dims), \(x.dims), \(y.dims) do not broadcast") }
            env[out] = .constant(r)
        case "Expand":
            guard let shape = folded(n.input[1]) else { throw fail("Expand '\(n.name)': the shape must be a constant") }
            let target = shape.ints.map { Int($0) }
            if let x = folded(n.input[0]) {
                let ones = Self.make(target, [Float](repeating: 1, count: target.reduce(1, *)))
                guard let r = Self.broadcast(x, ones, { a, _ in a }) else { throw fail("Expand '\(n.name)': \(x.dims) does not broadcast to \(target)") }
                env[out] = .constant(r)
            } else {
                env[out] = .tensor(try expand(try tensor(n.input[0], n), to: target, name, n))
            }
        case "Tile":
            guard let r = folded(n.input[1]) else { throw fail("Tile '\(n.name)': the repeats must be constant") }
            let repeats = r.ints.map { Int($0) }
            if let x = folded(n.input[0]) {
                env[out] = .constant(Self.tile(x, repeats))
            } else {
                var x = try tensor(n.input[0], n)
                guard repeats.count == b.shape(x).rank + 1, repeats[0] == 1 else { throw fail("Tile '\(n.name)': repeats \(repeats) would repeat the batch axis") }
                for (axis, k) in repeats.enumerated().dropFirst() where k != 1 {
                    guard k >= 1 else { throw fail("Tile '\(n.name)': repeats \(repeats) must be positive") }
                    x = b.concat([ValueID](repeating: x, count: k), unique("\(name).axis\(axis)"), axis: axis)
                }
                env[out] = .tensor(x)
            }
        case "Sum", "Mean", "Max", "Min": env[out] = try nary(n, name)
        case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin": env[out] = try reduce(n, name)
        case "InstanceNormalization": env[out] = .tensor(try instanceNorm(n, name))
        case "LRN": env[out] = .tensor(try lrn(n, name))
        case "Gelu":
            guard string(n, "approximate", "none") == "none" else { throw fail("Gelu '\(n.name)': only the exact (erf) form is supported, not approximate=\(string(n, "approximate", ""))") }
            env[out] = .tensor(b.activation(try tensor(n.input[0], n), .gelu, name))
        case "Erf":
            if let c = folded(n.input[0]) { env[out] = .constant(Self.make(c.dims, c.floats.map { Float(erf(Double($0))) })); return true }
            env[out] = .tensor(b.activation(try tensor(n.input[0], n), .erf, name))
        default: return false
        }
        return true
    }

    /// Softmax or LogSoftmax on any axis but the batch's: over axis 1 as the IR's op; another axis
    /// swapped to 1 and back; before opset 13 (the input seen as 2-D, [∏ dims before axis, ∏ from
    /// it]) the trailing dimensions flattened into one.
    mutating func softmax(_ n: Onnx_NodeProto, _ name: String) throws -> ValueID {
        let x = try tensor(n.input[0], n)
        let dims = b.shape(x).dims, rank = dims.count + 1
        let op: Op = n.opType == "Softmax" ? .softmax : .logSoftmax
        let given = int(n, "axis", opset >= 13 ? -1 : 1), axis = given < 0 ? given + rank : given
        guard axis >= 1, axis < rank else { throw fail("\(n.opType) '\(n.name)': axis \(given) of [N,\(dims.map(String.init).joined(separator: ","))]: over the batch axis is not supported") }
        func swapped(_ v: ValueID, _ a: Int, _ tag: String) -> ValueID {
            var perm = Array(0...b.shape(v).rank)
            perm.swapAt(1, a)
            return b.node(unique("\(name).\(tag)"), .transpose(perm: perm), [v])
        }
        if opset < 13, axis < rank - 1 || axis > 1 {
            // [A, B] with B the dimensions from the axis on, normalized over B.
            let (a, bb) = (dims[..<(axis - 1)].reduce(1, *), dims[(axis - 1)...].reduce(1, *))
            var y = b.node(unique("\(name).as_2d"), .reshape(a == 1 ? [bb] : [a, bb]), [x])
            y = a == 1 ? b.node(unique("\(name).op"), op, [y]) : swapped(b.node(unique("\(name).op"), op, [swapped(y, 2, "to_axis1")]), 2, "back")
            return b.node(name, .reshape(Shape(dims)), [y])
        }
        if axis == 1 { return b.node(name, op, [x]) }
        return swapped(b.node(unique("\(name).op"), op, [swapped(x, axis, "to_axis1")]), axis, "back")
    }

    /// Resize and Upsample of the height and width of [N,C,H,W], by constant scales or sizes (every
    /// opset's form): integer upscaling by nearest repeat or half-pixel linear on oneDNN's
    /// resampling (`upsample`); anything else — downscaling, fractional scales, cubic, align_corners,
    /// asymmetric linear, other rounding — as the IR's `resize` by ONNX's taps.
    mutating func resize(_ n: Onnx_NodeProto, _ name: String) throws -> ValueID {
        let x = try tensor(n.input[0], n)
        let shape = b.shape(x)
        guard shape.rank == 3 else { throw fail("\(n.opType) '\(n.name)': only the height and width of [N,C,H,W] are resized (input \(shape))") }
        // Scales: Upsample's attribute (opset 7) or input 1 (opset 9), Resize's input 1 (opset 10)
        // or 2 (11+; input 1 is the roi); or Resize's sizes (input 3).
        var scales: [Float]?, sizes: [Int]?
        if n.opType == "Upsample", let a = attr(n, "scales") { scales = a.floats }
        let scaleInput = n.opType == "Upsample" || n.input.count == 2 ? 1 : 2
        if scales == nil, n.input.count > scaleInput, !n.input[scaleInput].isEmpty, let c = folded(n.input[scaleInput]), !c.floats.isEmpty { scales = c.floats }
        if scales == nil, n.opType == "Resize", n.input.count > 3 {
            // A constant, or the input's own batch and channels joined to a height and width (PyTorch's interpolate).
            if let c = folded(n.input[3]), !c.ints.isEmpty { sizes = c.ints.map { Int($0) } }
            else if case .shape(let s)? = env[n.input[3]], s.dropFirst().allSatisfy({ $0 != nil }) { sizes = [1] + s.dropFirst().map { $0! } }
        }
        // Opset 18: axes name the dimensions the scales or sizes are for.
        let axes = ints(n, "axes", []).map { $0 < 0 ? $0 + 4 : $0 }
        if !axes.isEmpty {
            guard Set(axes).isSubset(of: [2, 3]) else { throw fail("Resize '\(n.name)': axes \(axes): only height and width are resized") }
            var fullScales: [Float] = [1, 1, 1, 1], fullSizes = [1, shape[0], shape[1], shape[2]]
            for (k, a) in axes.enumerated() { if let s = scales { fullScales[a] = s[k] }; if let z = sizes { fullSizes[a] = z[k] } }
            if scales != nil { scales = fullScales } else if sizes != nil { sizes = fullSizes }
        }
        guard let given = scales ?? sizes.map({ z in z.count == 4 ? zip(z, [1] + shape.dims).map { Float($0) / Float($1) } : [] }), given.count == 4 else {
            throw fail("\(n.opType) '\(n.name)': the scales or sizes must be constant, one for each of the 4 dimensions")
        }
        guard given[0] == 1, given[1] == 1 || sizes?[1] == shape[0] else {
            throw fail("\(n.opType) '\(n.name)': only the height and width of [N,C,H,W] are resized (scales \(given))")
        }
        guard string(n, "keep_aspect_ratio_policy", "stretch") == "stretch", int(n, "antialias", 0) == 0 else {
            throw fail("Resize '\(n.name)': antialias and keep_aspect_ratio_policy are not supported")
        }
        let size = sizes.map { Array($0.suffix(2)) } ?? [Int(Float(shape[1]) * given[2]), Int(Float(shape[2]) * given[3])]
        guard size.allSatisfy({ $0 > 0 }) else { throw fail("\(n.opType) '\(n.name)': an output of \(size)") }
        // Upsample (and Resize before opset 11) has no coordinate mode: asymmetric, with floor for nearest.
        let legacy = n.opType == "Upsample" || attr(n, "coordinate_transformation_mode") == nil && n.input.count == 2
        let modeName = string(n, "mode", "nearest") == "bilinear" ? "linear" : string(n, "mode", "nearest")
        let coordinates = string(n, "coordinate_transformation_mode", legacy ? "asymmetric" : "half_pixel")
        let rounding = string(n, "nearest_mode", legacy ? "floor" : "round_prefer_floor")
        guard let mode = Resize.Mode(rawValue: modeName), Resize.coordinateModes.contains(coordinates), mode != .nearest || Resize.roundingModes.contains(rounding) else {
            throw fail("Resize '\(n.name)': mode \(modeName) with coordinate_transformation_mode \(coordinates) is not supported "
                       + "(nearest, linear or cubic; \(Resize.coordinateModes.joined(separator: ", ")))")
        }
        // Integer upscaling that oneDNN's resampling computes alike: nearest as a repeat (half-pixel
        // with rounding half down, or asymmetric with floor), linear with half pixels.
        let integer = given[2] == given[2].rounded() && given[3] == given[3].rounded() && given[2] >= 1 && given[3] >= 1
            && size == [shape[1] * Int(given[2]), shape[2] * Int(given[3])]
        let halfPixel = coordinates == "half_pixel" || coordinates == "pytorch_half_pixel" && size.allSatisfy { $0 > 1 }
        if integer, mode == .nearest && (halfPixel && rounding == "round_prefer_floor" || coordinates == "asymmetric" && rounding == "floor") || mode == .linear && halfPixel {
            return b.node(name, .upsample(Upsample(mode == .nearest ? .nearest : .bilinear, scale: [Int(given[2]), Int(given[3])])), [x])
        }
        let r = Resize(mode: mode, coordinates: coordinates, rounding: rounding, cubicA: float(n, "cubic_coeff_a", -0.75),
                       excludeOutside: int(n, "exclude_outside", 0) == 1, size: size, scale: [given[2], given[3]])
        return b.node(name, .resize(r), [x])
    }

    /// Pad of the height and width of [N,C,H,W] (pads as an attribute or input; opset 18's axes):
    /// zeros as the IR's padding; another constant c as zero padding of x − c, plus c; reflect and
    /// edge as the mirrored or repeated rows and columns, sliced off the input and joined to it.
    mutating func pad(_ n: Onnx_NodeProto, _ name: String) throws -> ValueID {
        let x = try tensor(n.input[0], n)
        let rank = b.shape(x).rank + 1
        var p = n.input.count > 1 ? try constant(n.input[1], n).ints.map { Int($0) } : ints(n, "pads", [])
        if n.input.count > 3, !n.input[3].isEmpty {
            let axes = try constant(n.input[3], n).ints.map { Int($0) < 0 ? Int($0) + rank : Int($0) }
            guard p.count == 2 * axes.count else { throw fail("Pad '\(n.name)': \(p.count) pads for axes \(axes)") }
            var full = [Int](repeating: 0, count: 2 * rank)
            for (k, a) in axes.enumerated() { full[a] = p[k]; full[rank + a] = p[axes.count + k] }
            p = full
        }
        let value = n.input.count > 2 && !n.input[2].isEmpty ? try constant(n.input[2], n).floats.first ?? 0 : float(n, "value", 0)
        let mode = string(n, "mode", "constant")
        let (h, w) = rank == 4 ? (b.shape(x)[1], b.shape(x)[2]) : (0, 0)
        guard rank == 4, p.count == 8, p[0] == 0, p[1] == 0, p[4] == 0, p[5] == 0, p.allSatisfy({ $0 >= 0 }), ["constant", "reflect", "edge"].contains(mode),
              mode != "reflect" || (max(p[2], p[6]) < h && max(p[3], p[7]) < w) else {
            throw fail("Pad '\(n.name)': only padding of the height and width of [N,C,H,W] is supported, in modes constant, reflect (less than the size) and edge "
                       + "(mode \(mode), pads \(p), input [N,\(b.shape(x).dims.map(String.init).joined(separator: ","))])")
        }
        let padding = Padding2D(top: p[2], left: p[3], bottom: p[6], right: p[7])
        if mode == "constant" {
            guard value != 0 else { return b.node(name, .pad2d(padding), [x]) }
            let shifted = b.activation(x, .linear(alpha: 1, beta: -value), unique("\(name).shift"))
            return b.activation(b.node(unique("\(name).zeros"), .pad2d(padding), [shifted]), .linear(alpha: 1, beta: value), name)
        }
        // Along each axis (height, then width): the rows before, the input, the rows after.
        var y = x
        for (axis, before, after) in [(2, p[2], p[6]), (3, p[3], p[7])] where before + after > 0 {
            let size = b.shape(y)[axis - 1]
            let sources = (0..<before).map { k in mode == "edge" ? 0 : before - k } + [-1] + (0..<after).map { k in mode == "edge" ? size - 1 : size - 2 - k }
            let parts = sources.enumerated().map { j, i in
                i < 0 ? y : b.node(unique("\(name).axis\(axis).\(j)"), .slice(Slice(axis: axis, start: i, end: i + 1)), [y])
            }
            y = b.concat(parts, axis == 3 || p[3] + p[7] == 0 ? name : unique("\(name).axis\(axis)"), axis: axis)
        }
        return y
    }

    /// A comparison with data: the larger operand first (a comparison mirrored when they swap), a
    /// scalar constant made a tensor of its value (0·x + c).
    mutating func compare(_ n: Onnx_NodeProto, _ name: String) throws -> ValueID {
        guard var c = Comparison(rawValue: n.opType) else { throw fail("\(n.opType) '\(n.name)' is not a comparison") }
        var (a, bb) = (try operand(n.input[0], n, like: n.input[1]), try operand(n.input[1], n, like: n.input[0]))
        if b.shape(a).count < b.shape(bb).count {
            swap(&a, &bb)
            c = switch c { case .less: .greater; case .greater: .less; case .lessOrEqual: .greaterOrEqual; case .greaterOrEqual: .lessOrEqual; case .equal: .equal }
        }
        return b.node(name, .compare(c), [a, bb])
    }

    /// Data, or a scalar constant as a tensor shaped like the data `like` (0·x + c).
    mutating func operand(_ input: String, _ n: Onnx_NodeProto, like other: String) throws -> ValueID {
        if let c = folded(input) {
            guard c.floats.count == 1 else { throw fail("\(n.opType) '\(n.name)': data with a constant of shape \(c.dims) (only a scalar)") }
            return b.activation(try tensor(other, n), .linear(alpha: 0, beta: c.floats[0]), unique("\(n.name.isEmpty ? n.opType : n.name).constant"))
        }
        return try tensor(input, n)
    }

    /// Where with data: c·a + (1 − c)·b, c the condition's 1s and 0s (finite a and b), scalar
    /// constants made tensors of the condition's shape.
    mutating func choose(_ n: Onnx_NodeProto, _ name: String) throws -> ValueID {
        let condition = try tensor(n.input[0], n)
        func side(_ input: String) throws -> ValueID {
            if let c = folded(input) {
                guard c.floats.count == 1 else { throw fail("Where '\(n.name)': data with a constant of shape \(c.dims) (only a scalar)") }
                return b.activation(condition, .linear(alpha: 0, beta: c.floats[0]), unique("\(name).constant"))
            }
            return try tensor(input, n)
        }
        let (x, y) = (try side(n.input[1]), try side(n.input[2]))
        let opposite = b.activation(condition, .linear(alpha: -1, beta: 1), unique("\(name).not"))
        return b.add(b.mul(x, condition, unique("\(name).then")), b.mul(y, opposite, unique("\(name).else")), name)
    }

    /// Gather along `axis`: of constants and shape vectors, folded; of data with constant indices,
    /// a slice for each index joined along the axis (a scalar index drops the axis).
    mutating func gather(_ n: Onnx_NodeProto, _ name: String) throws -> ONNXImport.Value {
        guard let idx = folded(n.input[1]) else { throw fail("Gather '\(n.name)': the indices must be constant") }
        let axis = int(n, "axis", 0)
        switch env[n.input[0]] {
        case .shape(let s)?:
            guard axis == 0 else { throw fail("Gather '\(n.name)': axis \(axis) of a shape vector") }
            return .shape(try idx.ints.map { i in
                let k = Int(i) < 0 ? Int(i) + s.count : Int(i)
                guard k >= 0, k < s.count else { throw fail("Gather '\(n.name)': index \(i) of a shape of \(s.count)") }
                return s[k]
            })
        case .constant(let c)?:
            let a = axis < 0 ? axis + c.dims.count : axis
            guard a >= 0, a < c.dims.count else { throw fail("Gather '\(n.name)': axis \(axis) of a constant of shape \(c.dims)") }
            let (outer, size, inner) = (c.dims[..<a].reduce(1, *), c.dims[a], c.dims[(a + 1)...].reduce(1, *))
            var values: [Float] = []
            for o in 0..<outer {
                for i in idx.ints {
                    let k = Int(i) < 0 ? Int(i) + size : Int(i)
                    guard k >= 0, k < size else { throw fail("Gather '\(n.name)': index \(i) out of \(size)") }
                    values += c.floats[(o * size + k) * inner ..< (o * size + k + 1) * inner]
                }
            }
            return .constant(Self.make(Array(c.dims[..<a]) + idx.dims + Array(c.dims[(a + 1)...]), values))
        case .tensor(let x)?:
            let dims = b.shape(x).dims, rank = dims.count + 1
            let a = axis < 0 ? axis + rank : axis
            guard a >= 1, a < rank else { throw fail("Gather '\(n.name)': axis \(axis) of data: the batch axis (0) cannot be gathered") }
            let size = dims[a - 1]
            let parts = try idx.ints.enumerated().map { j, i -> ValueID in
                let k = Int(i) < 0 ? Int(i) + size : Int(i)
                guard k >= 0, k < size else { throw fail("Gather '\(n.name)': index \(i) out of \(size)") }
                return b.node(unique("\(name).\(j)"), .slice(Slice(axis: a, start: k, end: k + 1)), [x])
            }
            guard !parts.isEmpty else { throw fail("Gather '\(n.name)': no indices") }
            var y = parts.count == 1 ? parts[0] : b.concat(parts, unique("\(name).join"), axis: a)
            var target = dims
            target.replaceSubrange((a - 1)...(a - 1), with: idx.dims)
            if target != b.shape(y).dims {
                guard !target.isEmpty else { throw fail("Gather '\(n.name)': the result would have no per-sample axes") }
                y = b.node(name, .reshape(Shape(target)), [y])
            }
            return .tensor(y)
        default:
            throw fail("Gather '\(n.name)': input '\(n.input[0])' is unknown")
        }
    }

    /// A constant repeated `repeats[k]` times along each axis (numpy's tile).
    static func tile(_ c: ONNXImport.Constant, _ repeats: [Int]) -> ONNXImport.Constant {
        var cur = c
        for (axis, k) in repeats.enumerated() where k > 1 && axis < cur.dims.count {
            let (outer, inner) = (cur.dims[..<axis].reduce(1, *), cur.dims[axis...].reduce(1, *))
            var values: [Float] = []
            for o in 0..<outer { for _ in 0..<k { values += cur.floats[o * inner ..< (o + 1) * inner] } }
            cur.dims[axis] *= k
            cur = make(cur.dims, values)
        }
        return cur
    }

    /// Data broadcast to `target` ([N, …] with the batch's entry 1 or N): each unit axis grown by
    /// joining copies of it.
    mutating func expand(_ x: ValueID, to target: [Int], _ name: String, _ n: Onnx_NodeProto) throws -> ValueID {
        var dims = b.shape(x).dims
        let rank = max(dims.count + 1, target.count)
        guard target.count <= rank, rank == dims.count + 1 else { throw fail("Expand '\(n.name)': \(b.shape(x)) to \(target) would add axes before the batch") }
        let want = [Int](repeating: 1, count: rank - target.count) + target
        var y = x
        for axis in 1..<rank where want[axis] != dims[axis - 1] && want[axis] != 1 {
            guard dims[axis - 1] == 1 else { throw fail("Expand '\(n.name)': axis \(axis) of \(b.shape(x)) is not 1 and cannot become \(want[axis])") }
            y = b.concat([ValueID](repeating: y, count: want[axis]), unique("\(name).axis\(axis)"), axis: axis)
            dims[axis - 1] = want[axis]
        }
        return y
    }

    /// Sum, Mean, Max, Min of any number of inputs: constants folded; data combined pairwise —
    /// max(a, b) = a + relu(b − a), min(a, b) = a − relu(a − b).
    mutating func nary(_ n: Onnx_NodeProto, _ name: String) throws -> ONNXImport.Value {
        let op = n.opType
        let f: (Float, Float) -> Float = switch op {
        case "Max": { Swift.max($0, $1) }
        case "Min": { Swift.min($0, $1) }
        default: { $0 + $1 }
        }
        if n.input.allSatisfy({ folded($0) != nil }) {
            var acc = folded(n.input[0])!
            for i in n.input.dropFirst() {
                guard let r = Self.broadcast(acc, folded(i)!, f) else { throw fail("\(op) '\(n.name)': the constants' shapes do not broadcast") }
                acc = r
            }
            if op == "Mean" { acc = Self.make(acc.dims, acc.floats.map { $0 / Float(n.input.count) }) }
            return .constant(acc)
        }
        // Data first (a constant operand, as in the binary ops, only as the second of a pair).
        let order = n.input.filter { folded($0) == nil } + n.input.filter { folded($0) != nil }
        var acc: ValueID = try tensor(order[0], n)
        for (k, i) in order.enumerated().dropFirst() {
            let step = k == order.count - 1 && op != "Mean" ? name : unique("\(name).\(k)")
            switch op {
            case "Sum", "Mean":
                if let c = folded(i) { acc = try affine(acc, c, add: true, step, n) } else { acc = b.add(acc, try tensor(i, n), step) }
            default:
                if let c = folded(i) {
                    // max(x, c) = relu(x − c) + c; min(x, c) = c − relu(c − x).
                    guard c.floats.count == 1 else { throw fail("\(op) '\(n.name)': data with a constant of shape \(c.dims) (only a scalar)") }
                    let v = c.floats[0]
                    if op == "Max" {
                        let r = b.activation(b.activation(acc, .linear(alpha: 1, beta: -v), unique("\(step).shift")), .relu, unique("\(step).relu"))
                        acc = b.activation(r, .linear(alpha: 1, beta: v), step)
                    } else {
                        let r = b.activation(b.activation(acc, .linear(alpha: -1, beta: v), unique("\(step).shift")), .relu, unique("\(step).relu"))
                        acc = b.activation(r, .linear(alpha: -1, beta: v), step)
                    }
                } else {
                    let y = try tensor(i, n)
                    guard b.shape(acc) == b.shape(y) else { throw fail("\(op) '\(n.name)': data of shapes \(b.shape(acc)) and \(b.shape(y)) (only alike)") }
                    let sign: Float = op == "Max" ? 1 : -1
                    // Max: a + relu(b − a); Min: a − relu(a − b) = a + (−1)·relu(a − b).
                    let negated = b.activation(op == "Max" ? acc : y, .linear(alpha: -1, beta: 0), unique("\(step).negate"))
                    let difference = b.add(op == "Max" ? y : acc, negated, unique("\(step).difference"))
                    let r = b.activation(difference, .relu, unique("\(step).relu"))
                    acc = b.add(acc, sign == 1 ? r : b.activation(r, .linear(alpha: -1, beta: 0), unique("\(step).negative")), step)
                }
            }
        }
        if op == "Mean" { acc = b.activation(acc, .linear(alpha: 1 / Float(n.input.count), beta: 0), name) }
        return .tensor(acc)
    }

    /// ReduceMean / Sum / Max / Min: of constants, folded; of [C,H,W] data over height and width,
    /// global pooling; over any other axes but the batch's, the same pooling after a transpose and
    /// reshape that put the reduced elements on one axis.
    mutating func reduce(_ n: Onnx_NodeProto, _ name: String) throws -> ONNXImport.Value {
        let op = n.opType
        // Axes: an attribute, or (ReduceSum from opset 13, the others from 18) input 1.
        var axes = ints(n, "axes", [])
        if n.input.count > 1, !n.input[1].isEmpty {
            guard let a = folded(n.input[1]) else { throw fail("\(op) '\(n.name)': the axes must be constant") }
            axes = a.ints.map { Int($0) }
        }
        let keep = int(n, "keepdims", 1) == 1
        if axes.isEmpty && int(n, "noop_with_empty_axes", 0) == 1 { env[n.output[0]] = env[n.input[0]]; return env[n.input[0]]! }
        if let c = folded(n.input[0]) {
            let rank = c.dims.count
            let all = Set(axes.isEmpty ? Array(0..<rank) : axes.map { $0 < 0 ? $0 + rank : $0 })
            return .constant(Self.reduceConstant(c, all, op, keep: keep))
        }
        let x = try tensor(n.input[0], n)
        let dims = b.shape(x).dims, rank = dims.count + 1
        let set = Set(axes.isEmpty ? Array(0..<rank) : axes.map { $0 < 0 ? $0 + rank : $0 })
        guard !set.contains(0) else { throw fail("\(op) '\(n.name)': over the batch axis (\(axes.isEmpty ? "no axes given: all of them" : "axes \(axes)")) is not supported") }
        let kind = op.dropFirst("Reduce".count)
        if dims.count == 3, set == [2, 3] {
            var y: ValueID
            switch kind {
            case "Mean", "Sum":
                y = b.node(unique("\(name).keepdims"), .reshape([dims[0], 1, 1]), [b.globalAveragePool(x, unique("\(name).pool"))])
                if kind == "Sum" { y = b.activation(y, .linear(alpha: Float(dims[1] * dims[2]), beta: 0), unique("\(name).area")) }
            case "Max":
                y = b.node(unique("\(name).pool"), .pool2d(Pool2D(.max, kernel: [dims[1], dims[2]], stride: [1, 1])), [x])
            default:   // min = −max(−x)
                let negated = b.activation(x, .linear(alpha: -1, beta: 0), unique("\(name).negate"))
                let m = b.node(unique("\(name).pool"), .pool2d(Pool2D(.max, kernel: [dims[1], dims[2]], stride: [1, 1])), [negated])
                y = b.activation(m, .linear(alpha: -1, beta: 0), unique("\(name).negate_back"))
            }
            return .tensor(keep ? y : b.node(name, .reshape([dims[0]]), [y]))
        }
        // Any other set of axes: the kept axes first and the reduced ones last ([P, Q, 1] with Q the
        // reduced elements), pooled over Q, shaped back.
        let kept = (1..<rank).filter { !set.contains($0) }, reduced = (1..<rank).filter { set.contains($0) }
        guard keep || !kept.isEmpty else {
            throw fail("\(op) '\(n.name)': every axis but the batch's reduced without keepdims (one number a sample) is not supported; keepdims=1 is")
        }
        let perm = [0] + kept + reduced
        var y = perm == Array(0..<rank) ? x : b.node(unique("\(name).order"), .transpose(perm: perm), [x])
        let (p, q) = (kept.map { dims[$0 - 1] }.reduce(1, *), reduced.map { dims[$0 - 1] }.reduce(1, *))
        y = b.node(unique("\(name).rows"), .reshape([p, q, 1]), [y])
        switch kind {
        case "Mean", "Sum":
            y = b.globalAveragePool(y, unique("\(name).pool"))
            if kind == "Sum" { y = b.activation(y, .linear(alpha: Float(q), beta: 0), unique("\(name).count")) }
        case "Max":
            y = b.node(unique("\(name).pool"), .pool2d(Pool2D(.max, kernel: [q, 1], stride: [1, 1])), [y])
        default:
            let negated = b.activation(y, .linear(alpha: -1, beta: 0), unique("\(name).negate"))
            y = b.activation(b.node(unique("\(name).pool"), .pool2d(Pool2D(.max, kernel: [q, 1], stride: [1, 1])), [negated]), .linear(alpha: -1, beta: 0), unique("\(name).negate_back"))
        }
        let target = keep ? (1..<rank).map { set.contains($0) ? 1 : dims[$0 - 1] } : kept.map { dims[$0 - 1] }
        return .tensor(b.node(name, .reshape(Shape(target)), [y]))
    }

    static func reduceConstant(_ c: ONNXImport.Constant, _ axes: Set<Int>, _ op: String, keep: Bool) -> ONNXImport.Constant {
        let rank = c.dims.count
        var outDims = c.dims
        for a in axes { outDims[a] = 1 }
        let count = outDims.reduce(1, *)
        let start: Float = op == "ReduceMax" ? -.infinity : op == "ReduceMin" ? .infinity : 0
        var acc = [Float](repeating: start, count: count), seen = [Int](repeating: 0, count: count)
        var outStrides = [Int](repeating: 1, count: rank)
        for k in stride(from: rank - 2, through: 0, by: -1) { outStrides[k] = outStrides[k + 1] * outDims[k + 1] }
        for i in 0..<c.floats.count {
            var rest = i, o = 0
            for k in stride(from: rank - 1, through: 0, by: -1) {
                let idx = rest % c.dims[k]; rest /= c.dims[k]
                if !axes.contains(k) { o += idx * outStrides[k] }
            }
            let v = c.floats[i]
            acc[o] = op == "ReduceMax" ? max(acc[o], v) : op == "ReduceMin" ? min(acc[o], v) : acc[o] + v
            seen[o] += 1
        }
        if op == "ReduceMean" { for o in 0..<count { acc[o] /= Float(max(seen[o], 1)) } }
        return make(keep ? outDims : c.dims.enumerated().filter { !axes.contains($0.offset) }.map(\.element), acc)
    }

    /// (x − mean) / √(variance + ε) per sample and channel over height and width, then scale and
    /// bias per channel: global pooling, broadcast products, a power and a depthwise 1×1 convolution.
    mutating func instanceNorm(_ n: Onnx_NodeProto, _ name: String) throws -> ValueID {
        let x = try tensor(n.input[0], n)
        let dims = b.shape(x).dims
        guard dims.count == 3 else { throw fail("InstanceNormalization '\(n.name)': only of [N,C,H,W] (got \(b.shape(x)))") }
        let scale = try constant(n.input[1], n), bias = try constant(n.input[2], n), epsilon = float(n, "epsilon", 1e-5)
        let c = dims[0]
        func mean(_ v: ValueID, _ tag: String) -> ValueID {
            b.node(unique("\(name).\(tag)"), .reshape([c, 1, 1]), [b.globalAveragePool(v, unique("\(name).\(tag)_pool"))])
        }
        let negativeMean = b.activation(mean(x, "mean"), .linear(alpha: -1, beta: 0), unique("\(name).negative_mean"))
        let centred = b.add(x, negativeMean, unique("\(name).centred"))
        let variance = mean(b.mul(centred, centred, unique("\(name).square")), "variance")
        let inverse = b.activation(b.activation(variance, .linear(alpha: 1, beta: epsilon), unique("\(name).plus_epsilon")), .pow(scale: 1, exponent: -0.5), unique("\(name).inverse_deviation"))
        let normalized = b.mul(centred, inverse, unique("\(name).normalized"))
        return depthwise(normalized, weights: scale.floats, bias: bias.floats, name)
    }

    /// A depthwise 1×1 convolution: y[c] = w[c]·x[c] + b[c].
    mutating func depthwise(_ x: ValueID, weights: [Float], bias: [Float], _ name: String) -> ValueID {
        let c = weights.count
        let w = parameter("\(name).weight", Self.make([c, 1, 1, 1], weights), role: .convWeight)
        let bb = parameter("\(name).bias", Self.make([c], bias), role: .convBias)
        return b.node(name, .conv2d(Conv2D(outChannels: c, kernel: [1, 1], stride: [1, 1], dilation: [1, 1], padding: .zero, groups: c, hasBias: true)), [x, w, bb])
    }

    /// Local response normalization across channels: x / (bias + α/size · Σ x²)^β, the sum over
    /// channels c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉ as a 1×1 convolution of a band of ones.
    mutating func lrn(_ n: Onnx_NodeProto, _ name: String) throws -> ValueID {
        let x = try tensor(n.input[0], n)
        let dims = b.shape(x).dims
        guard dims.count == 3 else { throw fail("LRN '\(n.name)': only of [N,C,H,W] (got \(b.shape(x)))") }
        let size = int(n, "size", 0)
        guard size >= 1 else { throw fail("LRN '\(n.name)': size \(size)") }
        let (alpha, beta, bias) = (float(n, "alpha", 1e-4), float(n, "beta", 0.75), float(n, "bias", 1))
        let c = dims[0], below = (size - 1) / 2, above = (size - 1) - (size - 1) / 2
        var band = [Float](repeating: 0, count: c * c)
        for o in 0..<c { for i in max(0, o - below)...min(c - 1, o + above) { band[o * c + i] = 1 } }
        let square = b.mul(x, x, unique("\(name).square"))
        let w = parameter("\(name).window", Self.make([c, c, 1, 1], band), role: .convWeight)
        let sums = b.node(unique("\(name).window_sum"), .conv2d(Conv2D(outChannels: c, kernel: [1, 1], stride: [1, 1], dilation: [1, 1], padding: .zero, hasBias: false)), [square, w])
        let base = b.activation(sums, .linear(alpha: alpha / Float(size), beta: bias), unique("\(name).base"))
        let scale = b.activation(base, .pow(scale: 1, exponent: -beta), unique("\(name).scale"))
        notes.append("LRN '\(n.name)' runs as a 1×1 convolution over a band of channels and a power")
        return b.mul(x, scale, name)
    }

    /// GELU as exporters spell it, x·0.5·(1 + erf(x/√2)) in PyTorch's order (Div or Mul by √2's
    /// inverse, Erf, Add 1, Mul by x, Mul by 0.5) or with the 0.5 taken first: each such chain
    /// becomes one Gelu node (ONNX's, opset 20) in place of its five.
    static func fuseGelu(_ nodes: [Onnx_NodeProto], constants: (String) -> ONNXImport.Constant?) -> [Onnx_NodeProto] {
        var producer: [String: Int] = [:], consumers: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for o in n.output { producer[o] = i }
            for x in n.input { consumers[x, default: []].append(i) }
        }
        func scalar(_ n: Onnx_NodeProto, other than: String) -> Float? {
            guard n.input.count == 2, let k = n.input.firstIndex(where: { $0 != than }), let c = constants(n.input[k]), c.floats.count == 1 else { return nil }
            return c.floats[0]
        }
        func only(_ value: String) -> Int? { consumers[value].flatMap { $0.count == 1 ? $0[0] : nil } }
        func near(_ a: Float?, _ b: Float) -> Bool { a.map { abs($0 - b) <= 1e-4 * abs(b) } ?? false }
        var replace: [Int: Onnx_NodeProto] = [:], drop = Set<Int>()
        for (e, n) in nodes.enumerated() where n.opType == "Erf" {
            guard let p = producer[n.input[0]] else { continue }
            let scaled = nodes[p]
            guard scaled.input.count == 2 else { continue }
            let x = scaled.input[0]
            let isScale = scaled.opType == "Div" && near(scalar(scaled, other: x), Float(2).squareRoot()) || scaled.opType == "Mul" && near(scalar(scaled, other: x), Float(0.5).squareRoot())
            guard isScale, only(scaled.output[0]) == e, let a = only(n.output[0]), nodes[a].opType == "Add", near(scalar(nodes[a], other: n.output[0]), 1),
                  let m1 = only(nodes[a].output[0]), nodes[m1].opType == "Mul" else { continue }
            let other = nodes[m1].input.first { $0 != nodes[a].output[0] } ?? ""
            var chain = [p, e, a, m1], last = m1
            if other == x {
                // x · (1 + erf) then · 0.5
                guard let m2 = only(nodes[m1].output[0]), nodes[m2].opType == "Mul", near(scalar(nodes[m2], other: nodes[m1].output[0]), 0.5) else { continue }
                chain.append(m2); last = m2
            } else {
                // (x · 0.5) · (1 + erf)
                guard let h = producer[other], nodes[h].opType == "Mul", nodes[h].input.contains(x), near(scalar(nodes[h], other: x), 0.5), only(other) == m1 else { continue }
                chain.append(h)
            }
            var gelu = Onnx_NodeProto()
            gelu.opType = "Gelu"
            gelu.name = nodes[last].name.isEmpty ? "gelu_\(nodes[last].output[0])" : nodes[last].name
            gelu.input = [x]
            gelu.output = [nodes[last].output[0]]
            replace[last] = gelu
            drop.formUnion(chain.filter { $0 != last })
        }
        guard !replace.isEmpty else { return nodes }
        return nodes.enumerated().compactMap { i, n in drop.contains(i) ? nil : replace[i] ?? n }
    }
}
