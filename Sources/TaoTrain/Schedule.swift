import Foundation

/// Learning rate as a function of training progress, as TAO's `lr_config` defines it.
public enum LearningRateSchedule: Sendable, Equatable {
    /// `lr · gamma^⌊epoch / stepSize⌋`.
    case step(lr: Float, stepSize: Int, gamma: Float)
    /// Linear warm-up over the first `softStart` of training, then divided by `divider` at each
    /// annealing point (fractions of training).
    case softAnneal(lr: Float, softStart: Float, divider: Float, points: [Float])
    /// Linear warm-up over `softStart`, then a cosine from `lr` down to `lr · minRatio`.
    case cosine(lr: Float, minRatio: Float, softStart: Float)
    case constant(Float)
    /// TAO's soft_start_annealing_schedule (DetectNet_v2): exponential from `min` up to `max` over the
    /// first `softStart` of training, `max` until `annealing`, then exponential back down to `min`.
    case softStartAnnealing(min: Float, max: Float, softStart: Float, annealing: Float)
    /// TAO's soft_start_cosine_annealing_schedule (YOLO, SSD, RetinaNet): linear from `min` up to
    /// `max` over the first `softStart`, then min + (max − min)(1 + cos(π(p − softStart))) / 2 — the
    /// cosine's phase is not rescaled to what is left of training, as TAO's is not.
    case softStartCosine(min: Float, max: Float, softStart: Float)
    /// TensorFlow's cosine_decay over steps (TAO unet's lr_scheduler): at step s of `totalSteps`,
    /// lr · ((1 − alpha) · (1 + cos(π · min(s, decaySteps) / decaySteps)) / 2 + alpha).
    case cosineDecay(lr: Float, alpha: Float, decaySteps: Int, totalSteps: Int)
    /// TensorFlow's exponential_decay (not staircase): lr · rate^(s / decaySteps).
    case exponentialDecay(lr: Float, rate: Float, decaySteps: Int, totalSteps: Int)

    /// The rate at `epoch` (0-based) and `progress` ∈ [0, 1) through the whole run.
    public func rate(epoch: Int, progress p: Float) -> Float {
        switch self {
        case let .step(lr, size, gamma):
            return lr * Float(pow(Double(gamma), Double(epoch / max(size, 1))))
        case let .softAnneal(lr, start, divider, points):
            if p < start { return lr * max(p / start, 1e-3) }
            return lr / Float(pow(Double(divider), Double(points.filter { p >= $0 }.count)))
        case let .cosine(lr, minRatio, start):
            if p < start { return lr * max(p / start, 1e-3) }
            let t = Double((p - start) / max(1 - start, 1e-6))
            return lr * (minRatio + (1 - minRatio) * Float(0.5 * (1 + cos(Double.pi * t))))
        case let .constant(lr):
            return lr
        case let .softStartAnnealing(lo, hi, start, anneal):
            guard hi > 0, lo > 0 else { return hi }
            var t: Float = 1
            if p < start, start > 0 { t = p / start }
            if p > anneal, anneal < 1 { t = (1 - p) / (1 - anneal) }
            return Foundation.exp(Foundation.log(lo) + t * (Foundation.log(hi) - Foundation.log(lo)))
        case let .softStartCosine(lo, hi, start):
            if start > 0, p < start { return (hi - lo) * (p / start) + lo }
            return lo + (hi - lo) * Float(1 + cos(Double.pi * Double(p - start))) / 2
        case let .cosineDecay(lr, alpha, decay, total):
            let s = min(Double(p) * Double(total), Double(max(decay, 1)))
            return lr * ((1 - alpha) * Float(1 + cos(Double.pi * s / Double(max(decay, 1)))) / 2 + alpha)
        case let .exponentialDecay(lr, rate, decay, total):
            return lr * Float(pow(Double(rate), Double(p) * Double(total) / Double(max(decay, 1))))
        }
    }
}
