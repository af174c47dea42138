"""Write the bundled sample data (evaluation/data/): ``python -m evaluation.sample_data``.

The files are committed; this script only documents and reproduces them. The harness computes every known
answer from the committed files at run time, so regenerating them can never leave a stale expected value.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 20240917

REGIONS = [("R1", "North", "Alice Moreau"), ("R2", "South", "Bruno Silva"), ("R3", "East", "Chen Wei"),
           ("R4", "West", "Dana Okafor")]
# Regions grow at different rates, so year-over-year differs by region (North grows, East shrinks).
REGION_WEIGHT = {"R1": (1.0, 1.45), "R2": (1.1, 1.2), "R3": (1.2, 0.95), "R4": (0.9, 1.3)}
SEGMENTS = ["Consumer", "Small Business", "Enterprise"]
CHANNELS = ["Online", "Store", "Partner"]
PRODUCTS = {
    "Hardware": [("Laptop Pro 14", 1450.0), ("Laptop Air 13", 1099.0), ("Desktop Tower", 899.0),
                 ("Monitor 27", 329.0), ("Docking Station", 219.0), ("Tablet 11", 549.0)],
    "Software": [("Office Suite", 149.0), ("Antivirus Plus", 59.0), ("Design Studio", 399.0),
                 ("Backup Cloud", 89.0), ("Project Planner", 199.0), ("Accounting Basic", 129.0)],
    "Services": [("Setup Service", 120.0), ("Extended Warranty", 179.0), ("Data Migration", 450.0),
                 ("Training Day", 650.0), ("Remote Support Year", 299.0), ("Repair Service", 95.0)],
    "Accessories": [("Wireless Mouse", 29.0), ("Keyboard", 49.0), ("USB-C Hub", 39.0), ("Headset", 79.0),
                    ("Laptop Bag", 45.0), ("Webcam HD", 69.0)],
}
FIRST = ["Acme", "Blue", "Cedar", "Delta", "Echo", "Falcon", "Granite", "Harbor", "Iris", "Juniper", "Kite",
         "Lumen", "Maple", "Nova", "Orbit", "Pine", "Quartz", "River", "Summit", "Terra"]
SECOND = ["Labs", "Foods", "Studio", "Logistics", "Clinic", "Bakery", "Motors", "Media", "Partners", "Works"]
N_CUSTOMERS = 200
N_ORDERS = 800
HANDBOOK = [
    "Returns: hardware products may be returned within 30 days of delivery.",
    "Software licences are refundable within 14 days if the licence was not activated.",
    "Every employee receives 25 vacation days per year.",
    "Discounts above 15 percent need the approval of the regional manager.",
    "Customer support is open from 8am to 6pm, Monday to Friday.",
]


def _write(name: str, header: list[str], rows: list[list]) -> None:
    with open(DATA_DIR / name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _customers(rng: random.Random) -> list[list]:
    names = [f"{first} {second}" for first in FIRST for second in SECOND]
    rng.shuffle(names)
    rows = []
    for index in range(N_CUSTOMERS):
        signup = dt.date(2021, 1, 1) + dt.timedelta(days=rng.randrange(4 * 365))
        rows.append([f"C{index + 1:03d}", names[index], rng.choice(REGIONS)[0],
                     rng.choices(SEGMENTS, weights=[5, 3, 2])[0], signup.isoformat()])
    return rows


def _orders(rng: random.Random, customers: list[list], prices: dict[str, float]) -> list[list]:
    # The last 15 customers never order, so "customers without orders" has an answer.
    buyers = customers[:-15]
    weights = {year: [REGION_WEIGHT[c[2]][year - 2023] for c in buyers] for year in (2023, 2024)}
    rows = []
    for _ in range(N_ORDERS):
        year = 2023 if rng.random() < 0.45 else 2024
        day = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
        customer = rng.choices(buyers, weights=weights[year])[0]
        product = rng.choice(sorted(prices))
        quantity = rng.randint(1, 8)
        discount = rng.choice([0, 0, 0, 5, 10, 15])
        revenue = round(quantity * prices[product] * (1 - discount / 100), 2)
        rows.append([day.isoformat(), customer[0], product, rng.choices(CHANNELS, weights=[5, 3, 2])[0],
                     quantity, discount, f"{revenue:.2f}"])
    rows.sort(key=lambda row: row[0])  # stable: same-day orders keep their drawing order
    return [[f"O{index + 1:04d}", *row] for index, row in enumerate(rows)]


def _targets(rng: random.Random, orders: list[list], region_of: dict[str, str]) -> list[list]:
    actual: dict[tuple[str, str], float] = {}
    for order in orders:
        key = (order[1][:7] + "-01", region_of[order[2]])
        actual[key] = actual.get(key, 0.0) + float(order[7])
    rows = []
    for year in (2023, 2024):
        for month in range(1, 13):
            for region_id, _, _ in REGIONS:
                key = (f"{year}-{month:02d}-01", region_id)
                if key not in actual:
                    raise SystemExit(f"no orders in {key}: change SEED")  # targets-vs-actual needs every cell
                rows.append([key[0], region_id, int(round(actual[key] * rng.uniform(0.8, 1.25), -2))])
    return rows


def pdf_with_lines(lines: list[str]) -> bytes:
    """Build a minimal valid PDF, one Helvetica text line per page (the text has no parentheses)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(len(lines)))}] "
               f"/Count {len(lines)} >>", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for index, text in enumerate(lines):
        stream = f"BT /F1 11 Tf 50 720 Td ({text}) Tj ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * index} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    body, offsets = b"%PDF-1.4\n", []
    for number, content in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n{content}\nendobj\n".encode("latin-1")
    xref = f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{len(body)}\n%%EOF\n"
    return body + (xref + trailer).encode("latin-1")


def main() -> None:
    """Write every sample file."""
    rng = random.Random(SEED)
    DATA_DIR.mkdir(exist_ok=True)
    _write("regions.csv", ["region_id", "region_name", "manager"], [list(region) for region in REGIONS])
    products = [[f"P{index + 1:02d}", name, category, f"{price:.2f}"]
                for index, (category, name, price) in enumerate(
                    (category, name, price) for category, items in PRODUCTS.items() for name, price in items)]
    _write("products.csv", ["product_id", "product_name", "category", "unit_price"], products)
    customers = _customers(rng)
    _write("customers.csv", ["customer_id", "customer_name", "region_id", "segment", "signup_date"], customers)
    orders = _orders(rng, customers, {row[0]: float(row[3]) for row in products})
    _write("orders.csv", ["order_id", "order_date", "customer_id", "product_id", "channel", "quantity",
                          "discount_pct", "revenue"], orders)
    region_of = {row[0]: row[2] for row in customers}
    _write("targets.csv", ["month", "region_id", "target_revenue"], _targets(rng, orders, region_of))
    (DATA_DIR / "handbook.pdf").write_bytes(pdf_with_lines(HANDBOOK))


if __name__ == "__main__":
    main()
