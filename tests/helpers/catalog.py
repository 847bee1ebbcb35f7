"""The catalog most tests subscribe to."""


def build_catalog(client) -> None:
    """Two metrics, and plans of 49, 99 and 19 a month with a standard and a graduated
    charge, and a customer paying in USD."""
    assert (
        client.post(
            "/api/v1/billable_metrics/",
            {"code": "api_calls", "name": "API calls", "aggregation": "count"},
            format="json",
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/billable_metrics/",
            {"code": "tokens", "name": "Tokens", "aggregation": "sum", "field_name": "tokens"},
            format="json",
        ).status_code
        == 201
    )
    charges = [
        {"metric": "api_calls", "model": "standard", "properties": {"amount": "0.002"}},
        {
            "metric": "tokens",
            "model": "graduated",
            "properties": {
                "graduated_ranges": [
                    {"from_value": 0, "to_value": 1000, "per_unit_amount": "0", "flat_amount": "0"},
                    {
                        "from_value": 1001,
                        "to_value": None,
                        "per_unit_amount": "0.0001",
                        "flat_amount": "1",
                    },
                ]
            },
        },
    ]
    for code, amount in (("pro", 4900), ("business", 9900), ("starter", 1900)):
        response = client.post(
            "/api/v1/plans/",
            {
                "code": code,
                "name": code.title(),
                "interval": "monthly",
                "amount_cents": amount,
                "currency": "USD",
                "charges": charges,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
    assert (
        client.post(
            "/api/v1/customers/", {"external_id": "acme", "currency": "USD"}, format="json"
        ).status_code
        == 201
    )
