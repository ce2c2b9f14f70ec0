using Ingest.Sdk.Records;
using Xunit.Abstractions;

namespace Ingest.Connectors.Sample.Tests;

public class SampleGeneratorTests
{
    private static readonly SampleOptions Options = new(Seed: 11, Customers: 300, Products: 50, Orders: 800, Changes: 0);

    [Fact]
    public void Order_statuses_only_move_forward()
    {
        var events = SampleExpectations.Events(Options, 20_000)["orders"];
        var rank = new Dictionary<string, int> { ["pending"] = 0, ["paid"] = 1, ["shipped"] = 2, ["delivered"] = 3 };
        var last = new Dictionary<long, string>();
        var moves = 0;
        foreach (var e in events.Where(e => e.Op != ChangeOp.Delete))
        {
            var id = (long)e.Row["id"]!;
            var status = (string)e.Row["status"]!;
            if (e.Op == ChangeOp.Update)
            {
                var before = last[id];
                Assert.True(
                    status == "cancelled" ? before is "pending" or "paid" : rank[status] == rank[before] + 1,
                    $"order {id}: {before} -> {status}");
                moves++;
            }
            else if (e.Op == ChangeOp.Insert)
            {
                Assert.Equal("pending", status);
            }

            last[id] = status;
        }

        Assert.True(moves > 1000);
        Assert.All(events.Where(e => e.Op == ChangeOp.Delete), e => Assert.Equal("cancelled", last[(long)e.Row["id"]!]));
    }

    [Fact]
    public void Final_state_is_referentially_consistent_and_totals_add_up()
    {
        var state = SampleExpectations.FinalState(Options, 20_000);
        var customers = state["customers"];
        var orders = state["orders"];
        var products = state["products"];
        var lines = state["order_lines"].Values.GroupBy(l => (long)l["order_id"]!).ToDictionary(g => g.Key, g => g.ToList());

        Assert.Equal(orders.Count, lines.Count);
        foreach (var order in orders.Values)
        {
            var id = (long)order["id"]!;
            Assert.True(customers.ContainsKey(((long)order["customer_id"]!).ToString(System.Globalization.CultureInfo.InvariantCulture)), $"order {id} has no customer");
            var orderLines = lines[id];
            Assert.InRange(orderLines.Count, 1, 5);
            Assert.Equal(Enumerable.Range(1, orderLines.Count), orderLines.Select(l => (int)l["line_no"]!).Order());
            var total = orderLines.Sum(l =>
            {
                var gross = (int)l["quantity"]! * (decimal)l["unit_price"]!;
                return l["discount"] is decimal d ? Math.Round(gross * (1 - d), 2, MidpointRounding.AwayFromZero) : gross;
            });
            Assert.Equal(total, (decimal)order["total"]!);
            Assert.All(orderLines, l => Assert.True(products.ContainsKey(((long)l["product_id"]!).ToString(System.Globalization.CultureInfo.InvariantCulture))));
            var shipped = order["shipped_on"];
            Assert.Equal(order["status"] is "shipped" or "delivered", shipped is DateOnly);
        }
    }

    [Fact]
    public void Values_look_like_an_online_shop()
    {
        var state = SampleExpectations.FinalState(Options, 2_000);

        Assert.All(state["customers"].Values, c =>
        {
            Assert.Matches(@"^[a-z]+\.[a-z]+\d+(\+\d+)?@[a-z.]+$", (string)c["email"]!);
            Assert.Matches(@"^[A-Z][a-z]+ [A-Z][a-z]+$", (string)c["full_name"]!);
            Assert.True(c["country"] is null or string { Length: 2 });
            Assert.True((DateTimeOffset)c["created_at"]! <= (DateTimeOffset)c["updated_at"]!);
        });
        Assert.All(state["products"].Values, p =>
        {
            Assert.InRange(((string)p["description"]!).Length, 200, 2000);
            Assert.Matches(@"^[A-Z]{3}-\d{6}$", (string)p["sku"]!);
            Assert.InRange((decimal)p["price"]!, 0.5m, 99_999.99m);
        });
        Assert.Contains(state["customers"].Values, c => c["country"] is null);
        Assert.Contains(state["customers"].Values, c => c["loyalty_points"] is null);
        Assert.Contains(state["orders"].Values, o => o["note"] is string);
        Assert.Contains(state["order_lines"].Values, l => l["discount"] is decimal);
        Assert.Equal(
            ["cancelled", "delivered", "paid", "pending", "shipped"],
            state["orders"].Values.Select(o => (string)o["status"]!).Distinct().Order());
    }

    [Fact]
    public void Changes_mix_inserts_updates_and_deletes_over_all_streams()
    {
        var events = SampleExpectations.Events(Options, 5_000);

        Assert.Contains(events["customers"], e => e.Op == ChangeOp.Insert);
        Assert.Contains(events["customers"], e => e.Op == ChangeOp.Update);
        Assert.Contains(events["customers"], e => e.Op == ChangeOp.Delete);
        Assert.Contains(events["products"], e => e.Op == ChangeOp.Update);
        Assert.Contains(events["orders"], e => e.Op == ChangeOp.Insert);
        Assert.Contains(events["orders"], e => e.Op == ChangeOp.Update);
        Assert.Contains(events["orders"], e => e.Op == ChangeOp.Delete);
        Assert.Contains(events["order_lines"], e => e.Op == ChangeOp.Insert);
        Assert.Contains(events["order_lines"], e => e.Op == ChangeOp.Delete);
        Assert.All(events["order_lines"].Where(e => e.Op == ChangeOp.Delete), e => Assert.Equal(["order_id", "line_no"], e.Row.Keys));
    }
}
