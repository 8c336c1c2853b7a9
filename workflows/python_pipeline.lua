-- An order-processing pipeline in Python.
--
-- Each step defines run(): a step with no dependencies is called as run(),
-- the others as run(inputs), where inputs maps each dependency's name to its
-- output. The return value is the step's output (it goes through json.dumps).
-- Unlike the reference engine, names imported or defined at the top of a
-- step (json, round_money below) are visible inside run(), and print() goes
-- to the step's log.
workflow = {
  name = "python_pipeline",
  description = "Load orders, validate them, total them per customer and report, in Python",

  steps = {
    load_orders = {
      language = "python",
      code = [[
import json

ORDERS = """
[{"id": 1, "customer": "ada",   "amount": 120.50, "items": 3},
 {"id": 2, "customer": "brian", "amount": 75.00,  "items": 1},
 {"id": 3, "customer": "ada",   "amount": 42.25,  "items": 2},
 {"id": 4, "customer": "chen",  "amount": -5.00,  "items": 1},
 {"id": 5, "customer": "brian", "amount": 310.00, "items": 6},
 {"id": 6, "customer": "dana",  "amount": 0,      "items": 0},
 {"id": 7, "customer": "chen",  "amount": 18.75,  "items": 1},
 {"id": 8, "customer": "ada",   "amount": 99.99,  "items": 4}]
"""

def run():
    orders = json.loads(ORDERS)
    print(f"loaded {len(orders)} orders")
    return {"orders": orders, "source": "inline"}
]],
    },

    validate = {
      language = "python",
      depends_on = { "load_orders" },
      code = [[
def problem(order):
    if order["amount"] <= 0:
        return "amount must be positive"
    if order["items"] < 1:
        return "no items"
    return None

def run(inputs):
    valid, rejected = [], []
    for order in inputs["load_orders"]["orders"]:
        why = problem(order)
        if why:
            rejected.append({"id": order["id"], "reason": why})
        else:
            valid.append(order)
    print(f"{len(valid)} valid, {len(rejected)} rejected")
    return {"valid": valid, "rejected": rejected}
]],
    },

    totals_by_customer = {
      language = "python",
      depends_on = { "validate" },
      code = [[
from collections import defaultdict

def round_money(x):
    return round(x + 0.0, 2)

def run(inputs):
    totals = defaultdict(float)
    counts = defaultdict(int)
    for order in inputs["validate"]["valid"]:
        name = order["customer"]
        totals[name] += order["amount"]
        counts[name] += 1
    return {
        name: {"total": round_money(totals[name]), "orders": counts[name]}
        for name in sorted(totals)
    }
]],
    },

    report = {
      language = "python",
      depends_on = { "validate", "totals_by_customer" },
      code = [[
def run(inputs):
    totals = inputs["totals_by_customer"]
    rejected = inputs["validate"]["rejected"]
    best = max(totals, key=lambda name: totals[name]["total"])
    revenue = round(sum(t["total"] for t in totals.values()), 2)
    orders = sum(t["orders"] for t in totals.values())
    print(f"revenue {revenue} from {orders} orders; best customer {best}")
    return {
        "revenue": revenue,
        "orders": orders,
        "average_order": round(revenue / orders, 2),
        "best_customer": best,
        "rejected_ids": [r["id"] for r in rejected],
    }
]],
    },
  },
}
