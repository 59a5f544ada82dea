import ArgumentParser
import Foundation
import TaoGraph
import TaoModels
import TaoRuntime
import TaoTrain

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Placeholder, replaced below.")
    func run() throws {}
}
