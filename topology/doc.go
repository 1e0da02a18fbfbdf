// Package topology owns eddy's typed DSL and the graph it builds: sources,
// stateless and stateful operations, sinks, stores, the split into
// sub-topologies, the internal topics (repartition and changelog) that the
// split needs, validation, and Describe.
//
// # Types
//
// Streams and tables are typed with generics. Go methods cannot add type
// parameters, so the scheme is:
//
//   - operations that keep the key and value types are methods
//     (Stream.Filter, Stream.Peek, Stream.To, Stream.Merge, Table.Filter, ...);
//   - operations that change a type are package functions taking the stream
//     first (Map, MapValues, FlatMap, FlatMapValues, SelectKey, Process,
//     ProcessValues, GroupBy, Aggregate, TableMapValues).
//
// Every operation takes optional Options; Named gives the operation's node a
// stable name, which also names its internal topics.
//
// # Serdes
//
// A Stream carries the serdes of its key and value when they are known:
// sources declare them, type-preserving operations keep them, and
// type-changing operations keep the ones whose type did not change.
// WithSerdes sets them. They are needed where records leave the process:
// sinks, repartition topics and stores. A missing serde is a Build error that
// names the node.
//
// # Repartitioning
//
// An operation that may change the key (Map, FlatMap, SelectKey, Process)
// marks the stream. Grouping a marked stream writes it to an internal
// repartition topic, named <application-id>-<name>-repartition, and reads it
// back in a new sub-topology, so that all records of one key meet in one
// task. <name> is the grouping's Named option, else the store's name, else a
// generated node name.
//
// # Stores
//
// Aggregations materialize into key-value stores, logged to compacted
// changelog topics named <application-id>-<store>-changelog. Processors of
// the Processor API declare stores with AddKeyValueStore and name them in
// Process.
package topology
