// The constants, API versions and env-file rules live in the Foundation-free CNBCore, shared
// with the launcher; every user of the data model sees them through this module.
@_exported import CNBCore
