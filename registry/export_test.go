package registry

// Partition drops (cut) or lets through again (!cut) the registry traffic
// between r and the member at address, both ways, as a network partition
// would, without touching proto.actor's connections.
func Partition(r *Cluster, address string, cut bool) { r.setCut(address, cut) }

// Names returns how many names r's copy of the directory holds.
func Names(r *Cluster) int {
	r.dir.mu.RLock()
	defer r.dir.mu.RUnlock()
	return len(r.dir.names)
}

// Waiting returns how many users' messages r holds for the member at
// address, waiting for it to acknowledge earlier ones.
func Waiting(r *Cluster, address string) int {
	s := r.sender(address)
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.w.queue)
}
