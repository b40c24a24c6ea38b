"""MT5 gateways: the protocol every source of MT5 data speaks, the simulator, replay, connectors."""
