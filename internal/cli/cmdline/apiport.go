package cmdline

import (
	"fmt"
	"strconv"
	"strings"

	"bagpipe/internal/config"
)

// DefaultConfigFile is the bagpipe-bgp configuration file read by the tools.
const DefaultConfigFile = "/etc/bagpipe-bgp/bgp.conf"

// DefaultAPIPort is the default REST API port of bagpipe-bgp ([API] port).
const DefaultAPIPort = 8082

// APIPort returns the REST API port configured in the bagpipe-bgp
// configuration file path: option port of section [API] (or its deprecated
// name api_port), DefaultAPIPort when neither is set. A missing file is
// reported with an error wrapping fs.ErrNotExist.
func APIPort(path string) (int, error) {
	ini, err := config.ReadINI(path)
	if err != nil {
		return 0, err
	}
	for _, name := range []string{"port", "api_port"} {
		if v, ok := ini.Get("API", name); ok {
			port, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || port < 0 || port > 65535 {
				return 0, fmt.Errorf("%s: invalid [API] %s %q: not a port number", path, name, v)
			}
			return port, nil
		}
	}
	return DefaultAPIPort, nil
}
