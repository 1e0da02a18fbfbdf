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
// # Record metadata in callbacks
//
// The common callbacks have a ...WithMeta variant whose function also gets
// the record's Meta: its timestamp, headers and origin (input topic,
// partition, offset), Kafka Streams' record context, without dropping to
// the Processor API: Stream.FilterWithMeta, PeekWithMeta, ForeachWithMeta,
// and MapWithMeta, MapValuesWithMeta, FlatMapWithMeta,
// FlatMapValuesWithMeta (the value mappers also get the key, read-only).
// Meta is read-only: outputs keep the input's timestamp and headers.
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
// generated node name. Joins repartition a marked side the same way.
// Stream.Repartition does it explicitly (Kafka Streams' repartition), with
// the topic's name and partition count as options, whether or not the key
// changed.
//
// A processor with stores (Process, ProcessValues) that reads a marked
// stream is a Build error naming it, unless a Repartition comes between or
// the processor is given AssumePartitioned (the key change keeps every
// record in its key's partition). Here eddy does better on purpose: Kafka
// Streams reads such a stream as it is, silently, so one key's state can be
// split across tasks.
//
// # Timestamps
//
// Every record has a timestamp, its event time. A source stamps the
// records it reads with the Kafka record's timestamp, or with what its
// TimestampExtractor returns (WithTimestampExtractor; WallClockTimestamp
// stamps them with processing time). A task processes next, across its
// input partitions, the queued record with the smallest timestamp; stream
// time, which fires stream-time punctuators, is the largest timestamp
// processed; each partition's time, which extractors are given, is the
// largest timestamp processed in it. Records keep the source's timestamp
// through stateless operations, and a sink writes it as the Kafka
// record's timestamp. A timestamp before the Unix epoch (negative, as
// Kafka counts) is invalid: the source fails the task, skips the record or
// stamps it with the partition time, as OnInvalidTimestamp says (Kafka
// Streams' FailOnInvalidTimestamp, LogAndSkipOnInvalidTimestamp and
// UsePartitionTimeOnInvalidTimestamp). Repartition topics are read with
// their records' own timestamps, which eddy wrote.
//
// Two differences from Kafka Streams: an extractor gets the record's
// bytes, not the deserialized record; and partition time is not kept in
// the committed offsets' metadata, so it starts unknown whenever a task
// starts or rewinds (UsePartitionTimeOnInvalidTimestamp then fails on an
// invalid first record, as Kafka Streams does before any partition time).
//
// # Nulls
//
// Keys and values may be null, as in Kafka (see package processor for how
// a Record carries a null, and package serde for why serdes never see
// one). The DSL follows Kafka Streams:
//
//   - Operations that pass records on as they are (Filter, Peek, Merge,
//     Split) keep a null key or value, and MapValues and FlatMapValues keep
//     a null key, SelectKey and GroupBy a null value. A sink writes a null
//     as a Kafka null; a record with a null key goes to the partition the
//     producer's default partitioner picks.
//   - The functions the DSL calls (predicates, mappers, key selectors,
//     aggregators) get a null key or value as the zero value of its type,
//     which is nil for pointers, slices, maps and interfaces: use such a
//     type where null must be told apart from a real value, or the
//     Processor API, which sees Record.NullKey and Record.NullValue. What a
//     function returns is null if it is nil, so a key selector returning a
//     nil pointer makes a null key.
//   - Stream aggregations (Count, Reduce, Aggregate) drop every record
//     with a null key or value, as Kafka Streams' KStreamAggregate and
//     KStreamReduce do. Each drop is counted in the task's
//     eddy_dropped_records_total metric (reason null_key or null_value)
//     and logged at debug level; Kafka Streams logs at warn, but a topic
//     whose records have no keys would flood the log.
//   - Grouping after a key change drops those records before the
//     repartition topic, counted the same way. Here eddy differs from Kafka
//     Streams on purpose: since Kafka 3.7 (KIP-962) Kafka Streams writes
//     them to the repartition topic and drops them in the aggregation that
//     reads it. The result is the same; eddy's repartition topic of a
//     grouping feeds nothing but its aggregation, so eddy saves the write,
//     the read and the skew that records without keys bring to it.
//
// A table read from a topic (TableFrom) takes a null value for a
// tombstone, which deletes its key, and drops records with a null key:
// see Tables.
//
// # Stores
//
// Aggregations materialize into key-value stores, logged to compacted
// changelog topics named <application-id>-<store>-changelog. Processors of
// the Processor API declare stores with AddKeyValueStore and name them in
// Process.
//
// An aggregation (Count, Reduce, Aggregate) stamps each result with the
// largest timestamp of the records folded into it, as Kafka Streams does,
// so an out-of-order record does not move a result back in time; table
// operations downstream (Table.Filter, MapTableValues, ToStream) keep that
// timestamp. Its store therefore keeps each aggregate with its timestamp,
// as Kafka Streams' timestamped key-value stores do: the stored bytes are
// the timestamp (8 bytes, big-endian Unix milliseconds) followed by the
// aggregate's serialized bytes. The changelog records carry the same
// bytes and are stamped with the timestamp; Kafka Streams strips the
// prefix from its changelog and adds it back from the record's timestamp
// on restore, so the two changelog formats differ (neither is meant for
// other readers). Processors given such a store (by naming it in Process),
// and eddytest.KeyValueStore, see it as a state.KeyValueStore of the
// aggregate type: it reads the aggregates without their timestamps, and a
// value it writes has none, which the next aggregation of the key treats
// as older than its record.
//
// Cogroup, CogroupWith and CogroupAggregate fold several grouped streams
// of one key type, each with its own aggregator, into one aggregate per
// key in one store, as Kafka Streams' cogroup: every record updates its
// key's aggregate and forwards it. The grouped streams share the store's
// sub-topology and must be co-partitioned; windowed cogroups are not
// supported yet.
//
// # Windows
//
// WindowedBy cuts a grouped stream into time windows (window.TimeWindows:
// tumbling, or hopping with an advance), and TimeWindowedStream's Count
// and Reduce, and WindowedAggregate, aggregate per key and window into a
// Table keyed by window.Windowed[K], as Kafka Streams'
// KStreamWindowAggregate does:
//
//   - A record updates every window it falls in (window.TimeWindows'
//     WindowsFor) that has not closed. A window closes once the stream
//     time (the largest record timestamp the aggregation has seen) reaches
//     its end plus the grace period. A record whose windows have all
//     closed is dropped as late: counted in eddy_dropped_records_total with
//     the reason "late", once per closed window it falls in, and logged at
//     debug (Kafka Streams logs at warn).
//   - Records with a null key are dropped (reason null_key); a null value
//     reaches the aggregator as the zero value.
//   - Each update is forwarded with the largest timestamp of the window's
//     records. The table's key serde is window.TimeWindowedSerde over the
//     grouping's key serde, whose bytes are Kafka Streams'
//     TimeWindowedSerializer's, so Java consumers can read the output.
//   - EmitOnWindowClose forwards each window's result once, when it
//     closes, instead of every update (Kafka Streams' EmitStrategy
//     onWindowClose): closed windows are looked for at most once a second
//     of wall-clock time (processor.Context's WallClock), and the last
//     close time emitted is kept in the store, so that a restarted task
//     does not emit a window twice. Here eddy does better on purpose:
//     Kafka Streams skips closed windows that its store expired between
//     two looks (a stream time that jumps ahead by more than the retention
//     within a second), while eddy looks at once when the record it
//     processes would expire a closed window not yet emitted.
//
// The aggregation's window store (state.WindowStore) keeps a window for
// its size plus its grace period (WithRetention: longer), and is logged to
// a changelog with the cleanup policy "compact,delete" and a retention a
// day longer than the store's, as in Kafka Streams. Processors given the
// store see it as a state.WindowStore of the aggregate type, without
// timestamps, as for key-value aggregations.
//
// SuppressUntilWindowCloses and SuppressUntilTimeLimit hold back a table's
// updates, as Kafka Streams' suppress: the first forwards each window's
// final result once the stream time passes its end plus the grace period
// of the windowed aggregation that made the table (for sessions, plus the
// inactivity gap, as Kafka Streams); the second forwards a key's latest
// value once a time limit has passed since its first held update. The
// buffer is a logged key-value store ("<name>-store"), so it survives a
// crash and exactly-once holds for it; BufferConfig bounds it in records
// and bytes, and a full buffer either emits its oldest update early
// (SuppressUntilTimeLimit only) or fails the task with an error wrapping
// ErrSuppressBufferFull. Forwarded updates carry the timestamp of the
// key's last update; unlike Kafka Streams, not its headers.
//
// # Joins
//
// Join, LeftJoin and OuterJoin join two streams within join windows
// (window.JoinWindows), as Kafka Streams' KStream.join, leftJoin and
// outerJoin do (KStreamKStreamJoin):
//
//   - A record joins every record of the other stream with the same key
//     and a timestamp in its window (a left record at t: right records
//     in [t-before, t+after]; a right record: the bounds flipped), each
//     once, in timestamp order; the result carries the larger timestamp.
//   - Each side is buffered in a window store that keeps every record
//     (Kafka Streams' retainDuplicates; here the values of one key and
//     timestamp are kept as one list) for the windows' size plus grace.
//     The stores are "<store>-this-join" and "<store>-other-join"
//     ("-outer-this-join" and "-outer-other-join" where that side is
//     outer), after StoreName or the join's name, logged as windowed
//     stores are.
//   - A left or outer join keeps each record that found no partner in a
//     shared store ("<store>-left-shared-join-store" or
//     "-outer-shared-join-store") and emits it, joined with the zero
//     value of the other side (Go's stand-in for Kafka Streams' null: nil
//     for pointers, maps, slices and interfaces), only once its window
//     has closed: once the stream time both sides share has passed its
//     timestamp plus after (before, for a right record) plus the grace
//     period (KIP-633). As in Kafka Streams, closed windows are looked for
//     at most once a second of wall-clock time, when a record advances
//     the stream time, and a record that finds a partner leaves the store.
//   - Records with a null key are dropped (reason null_key), except on a
//     left or outer side, which emits them at once with a null key (Kafka
//     Streams' KIP-962); records with a null value are dropped (reason
//     null_value).
//   - After a key change, a side is read back through the repartition
//     topic "<name>-left-repartition" or "<name>-right-repartition". Both
//     inputs must have the same number of partitions: Build checks the
//     repartition topics whose count WithPartitions sets, and the engine
//     checks every input at start, with an error naming each topic and
//     its count.
//
// Where eddy differs on purpose:
//
//   - A record whose own window has closed when it arrives (its
//     timestamp plus after, or before, plus the grace period is behind
//     the stream time) is dropped as late, counted with the reason "late"
//     as windowed aggregations count theirs. Kafka Streams still joins it
//     with what its stores hold.
//   - An unmatched out-of-order record whose window has ended but whose
//     grace period has not passed waits in the shared store like any
//     other. Kafka Streams emits it unmatched at once (its check omits the
//     grace period, KAFKA-19536) and joins it again if a partner arrives
//     within the grace period: a spurious result eddy does not produce.
//   - The join's stores cannot be supplied one by one as with Kafka
//     Streams' StreamJoined store suppliers; the store options (InMemory,
//     WithBackend, WithoutLogging, WithChangelogConfig) apply to all of
//     them. Kafka Streams' self-join optimization is not done.
//
// JoinTable and LeftJoinTable join a stream with a table, as Kafka Streams'
// KStream.join(KTable) and leftJoin(KTable) (KStreamKTableJoinProcessor):
// each stream record is joined with the table's value of its key at that
// moment (table updates trigger nothing), keeping the stream record's key,
// timestamp and headers. An inner join drops a record the table has no
// value for; a left join forwards it with the zero value of the table's
// value type, and (KIP-962) does so for a record with a null key too.
// Records with a null value are dropped (null_value), and an inner join
// drops null keys (null_key). The table is read through its store, or
// through the Filter and MapTableValues that derived it from a
// materialized table (Kafka Streams' value getters), so the join shares
// the table's sub-topology and must be co-partitioned with it; a stream
// whose key changed is repartitioned first. Versioned tables and the join
// grace period of Kafka Streams 3.7+ are not supported.
//
// JoinTables, LeftJoinTables and OuterJoinTables join two tables on their
// keys into a table, as Kafka Streams' KTable.join, leftJoin and
// outerJoin (KTableKTableInnerJoin, LeftJoin, RightJoin, OuterJoin and
// JoinMerger). An update of either table looks up the other table's value
// of the key (through its store, or through the Filter, MapTableValues
// or join that derived it) and forwards the key's new joined value:
//
//   - Inner: a key both tables hold. An update whose key the other table
//     lacks forwards nothing; a deletion on either side, when the other
//     side holds the key, forwards a deletion of the joined key.
//   - Left: every key of the left table, joined with the zero value of
//     the right's value type where the right lacks it (Go's stand-in for
//     null). A right deletion updates the key to that result; a left
//     deletion deletes the key, and a left deletion of a key the left
//     table did not have forwards nothing.
//   - Outer: every key of either table, the zero value standing for the
//     side that lacks it; a key is deleted when the last side holding it
//     deletes it.
//   - A result carries the larger timestamp of the values joined (one
//     side's timestamp where the other lacks the key), whichever side's
//     update produced it. A nil result of the joiner is a deletion.
//   - Old values: a left (outer) join makes its left (both) tables send
//     old values, which tell the deletion of a key a table had from that
//     of one it never had. A downstream that needs the join's old values
//     (Filter, GroupTableBy, an outer side of another join) makes the
//     join send them and both tables send theirs; the old joined value is
//     the joiner applied to the updated side's old value and the other
//     side's current value, as in Kafka Streams.
//   - StoreName, or any store option, materializes the result in a
//     timestamped key-value store (Kafka Streams' Materialized), which a
//     deletion removes the key from; later joins read it there. Without
//     one, they read both tables' stores. Either way both tables, and
//     whatever reads the result, share one sub-topology, and the engine
//     checks at start that its topics have equal partition counts.
//
// Joining tables on a foreign key (Kafka Streams' KIP-213) and versioned
// tables are not supported.
//
// Global tables. GlobalTableFrom reads a topic into a GlobalTable, as
// Kafka Streams' GlobalKTable: every instance keeps a full copy of all of
// the topic's partitions in a store outside every sub-topology (no
// changelog: the topic is its log; in memory or Pebble per InMemory and
// WithBackend). The engine fills it from the topic's beginning, up to the
// last stable offsets, before it processes any record, and then applies
// the topic's new records as they come, on a goroutine of its own; a
// tombstone deletes its key. JoinGlobal and LeftJoinGlobal join a stream
// with it (Kafka Streams' KStream.join and leftJoin with a GlobalKTable):
// keyMapper picks the table's key from each record, and the record is
// joined with the table's value of that key as the instance's copy holds
// it at that moment, keeping the stream record's key, timestamp and
// headers. No co-partitioning is needed and a key change upstream needs
// no repartition topic. As in Kafka Streams, a record with a null value,
// or with a null mapped key (except a null-key record on a left join,
// joined with the zero value), is dropped; an inner join drops a record
// whose mapped key the table lacks, a left join forwards it with the zero
// value of the table's value type. The copy is read as it is, updated
// independently of the reading task's commits, so a join may see a
// table update that is later than, or not yet see one that is earlier
// than, the stream record's time. Describe lists the global stores under
// "Global stores".
//
// # Tables
//
// A Table is a changelog viewed as the latest value per key. Aggregations
// produce tables, and TableFrom reads one from a topic (Kafka Streams'
// StreamsBuilder.table), usually a compacted one:
//
//   - Each record is its key's new value, applied to the table's store in
//     the topic's order, an out-of-order timestamp included (Kafka Streams
//     4.x does the same with a key-value store, logging a warning), and
//     forwarded with its record's timestamp. The store is a timestamped
//     key-value store, named by StoreName, logged to its own changelog.
//   - A null value is a tombstone: it deletes the key and is forwarded as
//     a deletion, even of a key the table did not have; it never reaches
//     the value serde, so a JSON serde cannot fail on one. A record with a
//     null key is dropped and counted (reason null_key).
//   - eddy does not reuse the source topic as the store's changelog
//     (Kafka Streams' topology.optimization=reuse.ktable.source.topics):
//     the store has a changelog topic of its own.
//
// Between table nodes flows each key's new value (or its deletion) with
// the old value it replaces, Kafka Streams' Change. Whether a node
// forwards old values follows Kafka Streams' sendOldValues, because it
// decides what Filter emits: aggregations and a TableFrom with a
// StoreName always know them; a TableFrom without one (which Kafka
// Streams would not materialize) does only once a GroupTableBy below it
// asks; Filter and MapTableValues pass them on when their table has them
// (Filter) or a downstream asks (MapTableValues).
//
//   - Table.Filter turns an update that does not match into a deletion.
//     With old values, an update forwards nothing when neither its old
//     nor its new value matches; without, every update that does not
//     match forwards a deletion, as in Kafka Streams.
//   - MapTableValues maps new and old values; a deletion stays one, and a
//     nil result is one.
//   - ToStream forwards an update as a record with the new value and a
//     deletion as a record with a null value (Record.NullValue), which a
//     sink writes as a Kafka tombstone.
//
// GroupTableBy regroups a table by a new key and value, and
// GroupedTable's Count and Reduce, and TableAggregate, aggregate the
// groups with an adder and a subtractor (Kafka Streams' KGroupedTable).
// Every update of the table reaches the aggregation through a
// repartition topic as the subtraction of the old row from its group and
// the addition of the new row to its group: one record with both values
// when the group is the same (compared by the serialized keys), otherwise
// two, the subtraction first, as Kafka Streams 4.x's KTableRepartitionMap
// sends them. The topic's values are in Kafka Streams' format
// (ChangedSerializer: varint length of the new value, new value, old
// value and flag 2 for both; the one value and flag 1 for new, 0 for old).
// The aggregation subtracts first (if the group has an aggregate) and
// then adds (from the initializer, or for Reduce the value itself, if the
// group has none), as KTableAggregate and KTableReduce do; a result that
// is nil deletes the group. Its result carries the record's timestamp, or
// the group's previous one if later and the result was computed from it.
// A Count that drops to zero stays at zero, as in Kafka Streams.
//
// # Sessions and sliding windows
//
// SessionWindowedBy cuts a grouped stream into sessions
// (window.SessionWindows), and SessionWindowedStream's Count and Reduce,
// and SessionAggregate with a merger, aggregate per key and session into a
// Table keyed by window.Windowed[K] with window.SessionWindowedSerde keys,
// as Kafka Streams' KStreamSessionWindowAggregate does:
//
//   - A record at t finds its key's sessions that end at or after t-gap
//     and start at or before t+gap, and makes one session of them and t:
//     its aggregate is init() merged with theirs by the merger, in the
//     store's order (by end, then start), then the record folded in
//     (Reduce merges and folds with its reducer, Count adds).
//   - Each session merged away is removed from the store and forwarded as
//     a deletion, which ToStream forwards as a tombstone (a null value)
//     for that session's windowed key, as Kafka Streams forwards
//     Change(null, old); then the merged session is forwarded, even when
//     it has the bounds of one it replaced (a record inside a session).
//     The deletion carries the removed aggregate as its old value and the
//     merged session none, so Table.Filter forwards a tombstone only for a
//     removed session that matched. Both are stamped with their session's
//     end and, as in Kafka Streams, carry no headers.
//   - A record whose merged session ends before stream time minus the gap
//     minus the grace period is dropped as late (reason "late"), once,
//     and nothing changes. A session is kept for the gap plus grace after
//     its end (WithRetention: longer), so a session that has closed has
//     left the store and no record merges it back.
//   - Records with a null key are dropped; a null value reaches the
//     aggregator as the zero value.
//   - The store (state.SessionStore) keeps the bare aggregate, without a
//     timestamp, as Kafka Streams' session stores do; processors given it
//     see it as a state.SessionStore of the aggregate type.
//   - EmitOnWindowClose forwards each session once, when it has closed,
//     stamped with its end, in the order of end, then start, then key (that
//     of Kafka Streams' time-ordered session store), at most once a second
//     of wall-clock time, and keeps the last close time emitted in the
//     store. eddy differs in two ways. Kafka Streams' emit-final store
//     returns sessions until their time segment is dropped, past the
//     retention; eddy's store reads by the millisecond, so an
//     emit-on-window-close store keeps sessions another gap plus grace
//     (and a millisecond) to emit them (its changelog's retention grows as
//     much), while merges still see only sessions within the retention.
//     And, as for time windows, eddy looks at once when writing the
//     record's session would expire closed sessions not yet emitted.
//     Looking scans the whole store (state.SessionStore has no search by
//     end across keys), which the once-a-second limit keeps rare.
//
// SlidingWindowedBy cuts a grouped stream into sliding windows
// (window.SlidingWindows), and SlidingWindowedStream's Count and Reduce,
// and SlidingAggregate, aggregate per key and window, as Kafka Streams'
// KStreamSlidingWindowAggregate does (its reverse-iterator path, the one
// its built-in stores take, so updates come out in the same order):
//
//   - Windows are [start, start+diff], both ends included, and exist only
//     where a record enters or leaves one: a record at t updates every
//     existing window that holds it, newest first; creates the right
//     window of the record before it, [p+1, p+1+diff], if t falls in it;
//     creates its left window [t-diff, t] from the aggregate of the
//     window before it; and creates its right window [t+1, t+1+diff],
//     with the aggregate of the records after it, if records follow
//     within the difference. A record earlier than the difference goes
//     into [0, diff], which holds every such record, since no window
//     starts before 0.
//   - A record whose own window [t, t+diff] ends before stream time minus
//     grace is dropped as late, once; otherwise each window it would
//     update or create that has closed is dropped as late, once per
//     window, as Kafka Streams counts them.
//   - Records with a null key or a null value are dropped, as there.
//   - Each update is stamped with the largest timestamp of the window's
//     records, keeps the record's headers, and carries the aggregate it
//     was computed from as its old value (none for a window started from
//     the initializer, where Kafka Streams sends the initial value, as
//     for time windows). The table's keys use
//     window.TimeWindowedSerde with the time difference as the size,
//     Kafka Streams' layout for sliding windows, and the window store has
//     the time difference as its window size and keeps windows for twice
//     the difference plus grace.
//   - A time difference of 0 is refused by Build: Kafka Streams accepts
//     it and fails on the first record (a window [t, t] is no valid
//     time window).
//   - EmitOnWindowClose works as for time windows, with the window end
//     included: a window closes once stream time minus grace passes its
//     end, and as in Kafka Streams, a record earlier than the difference
//     does not look for closed windows.
package topology
