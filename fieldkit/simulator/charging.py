"""A simulated charger's charging side: connectors with OCPP statuses, the energy meter, transactions.

What a health check reads after an update, and what an update must never
disturb: the meter register only goes up, and a vehicle charging is a
transaction without a stop reading.
"""

from __future__ import annotations

from typing import Any, Literal

from fieldkit.simulator.faults import FaultPlan
from fieldkit.simulator.flash import DeviceError

# OCPP 1.6 ChargePointStatus names (the subset a simulated connector uses).
ConnectorStatus = Literal["Available", "Preparing", "Charging", "Faulted", "Unavailable"]


class ChargingSessions:
    def __init__(
        self, connectors: list[dict[str, Any]], meter_wh: int, transactions: list[dict[str, Any]], faults: FaultPlan
    ) -> None:
        self.connectors = connectors
        self.meter_wh = meter_wh
        self.transactions = transactions
        self.faults = faults
        self._flap_observations = 0

    @property
    def transaction_active(self) -> bool:
        return any(t["stop_wh"] is None for t in self.transactions)

    def start(self, connector: int) -> str:
        tx_id = f"tx-{len(self.transactions) + 1}"
        self.transactions.append({"id": tx_id, "connector": connector, "start_wh": self.meter_wh, "stop_wh": None})
        return tx_id

    def deliver(self, wh: int) -> None:
        if wh < 0:
            raise DeviceError("meter", "a meter register never goes backwards")
        self.meter_wh += wh

    def stop(self, tx_id: str) -> None:
        for transaction in self.transactions:
            if transaction["id"] == tx_id and transaction["stop_wh"] is None:
                transaction["stop_wh"] = self.meter_wh

    def settle(self, bricked: bool, unhealthy: bool) -> None:
        """Connector statuses after a boot or a session change.

        ``unhealthy``: a freshly installed image that boots but never brings the connectors up.
        """
        for connector in self.connectors:
            if bricked:
                connector["status"] = "Faulted"
            elif unhealthy:
                connector["status"] = "Unavailable"
            elif any(t["connector"] == connector["id"] and t["stop_wh"] is None for t in self.transactions):
                connector["status"] = "Charging"
            else:
                connector["status"] = "Available"

    def observed(self, trial_running: bool) -> list[dict[str, Any]]:
        """Connector statuses as a health check reads them, one observation per call.

        Under "flap-health", a freshly installed image reports its connectors
        alternately Available and Unavailable: stable for no window at all.
        """
        if self.faults.flap_health and trial_running:
            self._flap_observations += 1
            status = "Unavailable" if self._flap_observations % 2 else "Available"
            return [{**c, "status": status} for c in self.connectors]
        return [dict(c) for c in self.connectors]
