package rebalance

// ProtocolName is the name of eddy's group protocol, under which an
// application's members join its consumer group: kafka-consumer-groups.sh
// --describe and other tools show it as the group's assignment strategy.
// Versions of the data within it are negotiated by version bytes in eddy's
// user data, so the name never changes.
const ProtocolName = "eddy"
