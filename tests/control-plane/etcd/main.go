// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 at the version
// k8s.io/kubernetes selects, so the control plane needs no download beyond Go modules.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
