import XCTest
import TaoData

/// Sharded epochs: `count` ranks of batch B see at every step exactly the samples one process of
/// batch `count · B` sees, each sample once an epoch, none on two ranks.
final class EpochOrderTests: XCTestCase {
    func testRanksSplitEachStepOfTheSingleProcessOrder() {
        for ranks in [2, 3, 4] {
            var one = EpochOrder(samples: 103, batchSize: 4 * ranks)
            var parts = (0..<ranks).map { EpochOrder(samples: 103, batchSize: 4, shard: Shard(rank: $0, count: ranks)) }
            one.start(seed: 77)
            for r in parts.indices { parts[r].start(seed: 77) }
            XCTAssertEqual(parts.map(\.stepsPerEpoch), Array(repeating: 103 / (4 * ranks), count: ranks))
            var seen = Set<Int>()
            while let whole = one.next() {
                let split = parts.indices.map { parts[$0].next()! }
                XCTAssertEqual(split.flatMap { $0 }, whole, "\(ranks) ranks: rank r takes the r-th quarter of the step's batch")
                for i in whole { XCTAssertTrue(seen.insert(i).inserted, "sample \(i) twice in an epoch") }
            }
            XCTAssertTrue(parts.allSatisfy { var p = $0; return p.next() == nil }, "every rank ends with the single process")
            XCTAssertEqual(seen.count, (103 / (4 * ranks)) * 4 * ranks)
        }
    }

    func testTheOrderDependsOnTheSeedOnly() {
        var a = EpochOrder(samples: 50, batchSize: 5), b = EpochOrder(samples: 50, batchSize: 5, shard: Shard(rank: 1, count: 2))
        a.start(seed: 3); b.start(seed: 3)
        XCTAssertEqual(a.order, b.order)
        var c = EpochOrder(samples: 50, batchSize: 5)
        c.start(seed: 4)
        XCTAssertNotEqual(a.order, c.order)
        XCTAssertEqual(a.order.sorted(), Array(0..<50))
    }
}
