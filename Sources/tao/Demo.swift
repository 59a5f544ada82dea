import ArgumentParser
import Foundation
import TaoData
import TaoGraph
import TaoRuntime
import TaoTrain

/// The README's main job until the classification task lands: trains a small residual CNN on the
/// real Fashion-MNIST images Debian ships, evaluates it on the 10,000 test images and prints the accuracy.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a small CNN on Fashion-MNIST and report its test accuracy.",
        discussion: "Reads the IDX files of Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist).")

    @Option(help: "Folder with train-images-idx3-ubyte.gz and friends.") var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Passes over the 60,000 training images.") var epochs = 4
    @Option(help: "Images per training step.") var batch = 128
    @Option(help: "Peak learning rate (SGD, Nesterov momentum 0.9, cosine decay).") var lr: Float = 0.1
    @Option(help: "Random seed: the same seed gives the same run.") var seed: UInt64 = 1

    func validate() throws {
        guard epochs >= 1, batch >= 1 else { throw ValidationError("--epochs and --batch must be positive") }
    }

    static func network(classes: Int) throws -> Graph {
        var b = GraphBuilder()
        func block(_ x: ValueID, _ name: String, _ out: Int, stride: Int) -> ValueID {
            var y = b.relu(b.batchNorm(b.conv2d(x, "\(name).conv1", out: out, kernel: 3, stride: stride), "\(name).bn1"), "\(name).relu1")
            y = b.batchNorm(b.conv2d(y, "\(name).conv2", out: out, kernel: 3), "\(name).bn2")
            var s = x
            if stride != 1 || b.shape(x)[0] != out {
                s = b.batchNorm(b.conv2d(x, "\(name).downsample.0", out: out, kernel: 1, stride: stride, padding: .zero), "\(name).downsample.1")
            }
            return b.relu(b.add(y, s, "\(name).add"), "\(name).relu2")
        }
        var x = b.input("image", [1, 28, 28])
        x = b.relu(b.batchNorm(b.conv2d(x, "conv1", out: 32, kernel: 3), "bn1"), "relu")
        x = block(x, "layer1.0", 32, stride: 1)
        x = block(x, "layer2.0", 64, stride: 2)
        x = block(x, "layer3.0", 128, stride: 2)
        x = b.dropout(b.globalAveragePool(x, "avgpool"), "dropout", rate: 0.2)
        x = b.dense(x, "fc", out: classes)
        return try b.build(outputs: [x])
    }

    func run() throws {
        let train = try LabelledImages(idxImages: "\(data)/train-images-idx3-ubyte.gz", idxLabels: "\(data)/train-labels-idx1-ubyte.gz")
        let test = try LabelledImages(idxImages: "\(data)/t10k-images-idx3-ubyte.gz", idxLabels: "\(data)/t10k-labels-idx1-ubyte.gz")
        let (mean, std): (Float, Float) = (0.286, 0.353)
        let graph = try Demo.network(classes: train.classes)
        let store = ParameterStore(graph: graph, seed: seed)
        print("Fashion-MNIST: \(train.count) training and \(test.count) test images, \(train.classes) classes; model: \(graph.trainableParameterCount) parameters")
        let exec = try Executor(graph: graph, batch: batch, mode: .training, parameters: store, seed: seed)
        let trainer = Trainer(executor: exec, optimizer: SGD(momentum: 0.9, nesterov: true), learningRate: lr,
                              loss: SoftmaxCrossEntropy(labelSmoothing: 0.1), regularizer: Regularizer(.l2, weight: 2.5e-5))
        var rng = SplitMix64(seed: seed)
        let steps = train.count / batch
        let total = steps * epochs
        let start = Date()
        for epoch in 0..<epochs {
            var order = Array(0..<train.count)
            order.shuffle(using: &rng)
            var lossSum: Float = 0
            for s in 0..<steps {
                let t = Float(epoch * steps + s) / Float(total)
                trainer.learningRate = lr * 0.5 * (1 + Float(cos(Double.pi * Double(t))))
                let idx = order[(s * batch)..<((s + 1) * batch)]
                train.gather(idx, into: exec.inputPointer(0), mean: mean, std: std)
                flipHalf(exec.inputPointer(0), count: batch, rng: &rng)
                lossSum += trainer.step(labels: idx.map { train.labels[$0] })
                if (s + 1) % 50 == 0 || s + 1 == steps {
                    let done = Double(epoch * steps + s + 1)
                    let rate = done * Double(batch) / Date().timeIntervalSince(start)
                    let line = String(format: "epoch %d/%d  step %4d/%d  loss %.4f  %.0f img/s", epoch + 1, epochs, s + 1, steps, lossSum / Float(s + 1), rate)
                    print(line)
                }
            }
        }
        let accuracy = try evaluate(graph: graph, store: store, test: test, mean: mean, std: std)
        print(String(format: "test accuracy: %.2f%% on %d images (trained %.0f s)", accuracy * 100, test.count, Date().timeIntervalSince(start)))
    }

    /// Mirrors half of the images left-right (the usual Fashion-MNIST augmentation).
    private func flipHalf(_ p: UnsafeMutablePointer<Float>, count: Int, rng: inout SplitMix64) {
        for k in 0..<count where rng.next() & 1 == 0 {
            for r in 0..<28 {
                let row = p + k * 784 + r * 28
                for c in 0..<14 { let t = row[c]; row[c] = row[27 - c]; row[27 - c] = t }
            }
        }
    }

    private func evaluate(graph: Graph, store: ParameterStore, test: LabelledImages, mean: Float, std: Float) throws -> Double {
        let n = 500
        let exec = try Executor(graph: graph, batch: n, mode: .inference, parameters: store)
        var correct = 0
        for s in stride(from: 0, to: test.count, by: n) {
            let idx = Array(s..<min(s + n, test.count))
            exec.inputPointer(0).update(repeating: 0, count: n * 784)
            test.gather(idx[...], into: exec.inputPointer(0), mean: mean, std: std)
            exec.forward()
            let y = exec.outputPointer()
            let c = test.classes
            for (k, i) in idx.enumerated() {
                var best = 0
                for j in 1..<c where y[k * c + j] > y[k * c + best] { best = j }
                if best == test.labels[i] { correct += 1 }
            }
        }
        return Double(correct) / Double(test.count)
    }
}
