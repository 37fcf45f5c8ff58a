// The text helpers and the seeded generator live in CairnBasics, below every module; CNBCore's
// users keep seeing them.
@_exported import CairnBasics
