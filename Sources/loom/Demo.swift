import ArgumentParser

/// Placeholder replaced below.
struct Demo: ParsableCommand {}
