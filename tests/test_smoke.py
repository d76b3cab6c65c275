def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200, r.text
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"][0]["ok"]
