// Package host is agenthost's composition root: the only package that builds
// the whole world.
//
// [New] prepares everything that can fail before serving: it creates or
// checks the data directory (0700), takes its lock so that two hosts never
// share one state, opens the store, loads or creates the trust-domain CA, binds
// the HTTP listener and creates the Workload API sockets. [Host.Run] then runs
// every long-running part as a [Task] under [RunTasks]: the first failure stops
// them all, a panic is recovered into an error, and cancellation (SIGINT or
// SIGTERM in the CLI) is a clean exit that completes within 5 seconds.
//
// Other packages never construct their collaborators: they receive them here
// through their Config structs.
package host
