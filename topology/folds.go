package topology

// The aggregations fold each record into an aggregate with a function of
// the key, the value, the old aggregate and whether there was one. These
// turn the DSL's reducers and initializer-aggregator pairs into that form.

// reducing folds with fn(aggregate, value); the first value of a key (or
// window) is its initial aggregate, as Kafka Streams' Reducer.
func reducing[K, V any](fn func(agg, v V) V) func(K, V, V, bool) V {
	return func(_ K, v V, old V, had bool) V {
		if !had {
			return v
		}
		return fn(old, v)
	}
}

// aggregating folds with agg, starting from init(), as Kafka Streams'
// Initializer and Aggregator.
func aggregating[K, V, VA any](init func() VA, agg func(K, V, VA) VA) func(K, V, VA, bool) VA {
	return func(k K, v V, old VA, had bool) VA {
		if !had {
			old = init()
		}
		return agg(k, v, old)
	}
}
