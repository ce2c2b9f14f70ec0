using System.Text;

namespace Ingest.Connectors.Sample;

/// <summary>Word lists and hashing: every generated value is a pure function of (seed, entity, field).</summary>
internal static class SampleData
{
    public static readonly byte[][] FirstNames = Utf8(
        "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
        "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
        "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sofia", "Mark", "Emma", "Paul", "Olivia",
        "Lukas", "Mia", "Hiroshi", "Yuki", "Wei", "Li", "Arjun", "Priya", "Mohammed", "Fatima",
        "Pierre", "Camille", "Giulia", "Marco", "Lars", "Ingrid", "Pedro", "Ana", "Ivan", "Olga");

    public static readonly byte[][] LastNames = Utf8(
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "Allen",
        "Mueller", "Schmidt", "Schneider", "Fischer", "Rossi", "Russo", "Dubois", "Laurent", "Tanaka", "Suzuki",
        "Wang", "Zhang", "Kumar", "Singh", "Silva", "Santos", "Nielsen", "Hansen", "Ivanov", "Novak");

    public static readonly byte[][] Domains = Utf8(
        "example.com", "mail.example", "inbox.example", "post.example.org", "shopper.example.net", "webmail.example");

    public static readonly string[] Countries =
        ["US", "US", "US", "GB", "DE", "FR", "CA", "AU", "NL", "ES", "IT", "SE", "JP", "BR", "IN", "MX", "PL", "IE", "NO", "NZ"];

    public static readonly byte[][] CountriesUtf8 = Utf8(Countries);

    public static readonly string[] Categories =
        ["Electronics", "Books", "Home & Kitchen", "Toys", "Sports", "Garden", "Clothing", "Beauty", "Grocery", "Office"];

    public static readonly byte[][] CategoriesUtf8 = Utf8(Categories);

    public static readonly byte[][] CategoryCodes = Utf8("ELE", "BOO", "HOM", "TOY", "SPO", "GAR", "CLO", "BEA", "GRO", "OFF");

    public static readonly byte[][] Adjectives = Utf8(
        "Ergonomic", "Rustic", "Sleek", "Durable", "Handmade", "Compact", "Gorgeous", "Practical", "Refined", "Small",
        "Incredible", "Lightweight", "Premium", "Vintage", "Modern", "Classic");

    public static readonly byte[][] Materials = Utf8(
        "Steel", "Wooden", "Cotton", "Granite", "Plastic", "Leather", "Bamboo", "Ceramic", "Wool", "Glass", "Copper", "Linen");

    public static readonly byte[][] Nouns = Utf8(
        "Chair", "Table", "Lamp", "Keyboard", "Shirt", "Backpack", "Kettle", "Notebook", "Headphones", "Bottle",
        "Blanket", "Watch", "Wallet", "Speaker", "Mug", "Jacket", "Gloves", "Planter", "Bicycle Bell", "Desk Organizer");

    public static readonly byte[][] Words = Utf8(
        "designed", "for", "everyday", "use", "with", "a", "focus", "on", "comfort", "and", "quality", "materials",
        "that", "last", "this", "product", "is", "easy", "to", "clean", "store", "carry", "built", "tested",
        "customers", "love", "its", "simple", "elegant", "shape", "perfect", "gift", "home", "office", "travel",
        "responsibly", "sourced", "warranty", "included", "available", "in", "several", "colors", "sizes",
        "lightweight", "yet", "sturdy", "frame", "finish", "premium", "feel", "affordable", "price", "the", "every",
        "detail", "crafted", "by", "skilled", "makers");

    public static readonly string[] Statuses = ["pending", "paid", "shipped", "delivered", "cancelled"];

    public static readonly byte[][] StatusesUtf8 = Utf8(Statuses);

    public static readonly string[] Currencies = ["USD", "USD", "USD", "USD", "USD", "EUR", "EUR", "EUR", "GBP", "CAD", "AUD", "CHF"];

    public static readonly byte[][] CurrenciesUtf8 = Utf8(Currencies);

    public static readonly string[] Notes =
        ["Leave at the door", "Gift wrap, please", "Call before delivery", "Deliver after 5pm", "Fragile items",
         "Ring the bell twice", "No plastic packaging", "Deliver to reception"];

    public static readonly byte[][] NotesUtf8 = Utf8(Notes);

    private static byte[][] Utf8(params string[] values) => values.Select(Encoding.UTF8.GetBytes).ToArray();

    /// <summary>SplitMix64's finalizer: a fast, well-mixed 64-bit hash.</summary>
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A hash of (seed, tag, id, field).</summary>
    public static ulong Hash(long seed, int tag, long id, int field = 0) =>
        Mix(Mix(Mix((ulong)seed + ((ulong)tag * 0xD6E8FEB86659FD93UL)) ^ (ulong)id) + (ulong)field);

    /// <summary>A value in [0, n) from a hash.</summary>
    public static int Pick(ulong hash, int n) => (int)((hash >> 32) * (ulong)n >> 32);

    /// <summary>A value in [0, n) from a hash, for ranges beyond int.</summary>
    public static long PickLong(ulong hash, long n) => (long)(hash % (ulong)n);
}

/// <summary>SplitMix64: the per-event random stream, seeded from (seed, event index).</summary>
internal struct SampleRng(ulong state)
{
    private ulong _state = state;

    public ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        var z = _state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public int Next(int n) => SampleData.Pick(Next(), n);
}

/// <summary>Appends UTF-8 text into a span without allocating.</summary>
internal ref struct Utf8Text(Span<byte> buffer)
{
    private readonly Span<byte> _buffer = buffer;

    public int Length { get; private set; }

    public readonly ReadOnlySpan<byte> Written => _buffer[..Length];

    public void Append(ReadOnlySpan<byte> text)
    {
        text.CopyTo(_buffer[Length..]);
        Length += text.Length;
    }

    public void Append(byte c) => _buffer[Length++] = c;

    public void AppendLower(ReadOnlySpan<byte> text)
    {
        foreach (var c in text)
        {
            _buffer[Length++] = c is >= (byte)'A' and <= (byte)'Z' ? (byte)(c + 32) : c;
        }
    }

    public void Append(long value, string? format = null)
    {
        value.TryFormat(_buffer[Length..], out var n, format, System.Globalization.CultureInfo.InvariantCulture);
        Length += n;
    }
}
