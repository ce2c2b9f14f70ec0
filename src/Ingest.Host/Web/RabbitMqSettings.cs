namespace Ingest.Host.Web;

/// <summary>
/// Where the control plane's RabbitMQ broker is: from <c>--bus rabbitmq://user:pass@host:port/vhost</c>, or from configuration:
/// <code>
/// "Bus": { "RabbitMq": { "Host": "localhost", "Port": 5672, "VirtualHost": "/", "Username": "guest", "Password": "guest" } }
/// </code>
/// (<c>Bus:RabbitMq:Uri</c> takes the URI form; environment variables use <c>Bus__RabbitMq__Host</c> and so on).
/// </summary>
/// <param name="Host">The broker's host name.</param>
/// <param name="Port">Its AMQP port.</param>
/// <param name="VirtualHost">The virtual host.</param>
/// <param name="Username">The user.</param>
/// <param name="Password">The password (never printed).</param>
internal sealed record RabbitMqSettings(string Host, ushort Port, string VirtualHost, string Username, string Password)
{
    /// <summary>The broker without its password, for logs.</summary>
    public string Display => $"rabbitmq://{Username}@{Host}:{Port}/{Uri.EscapeDataString(VirtualHost)}";

    /// <summary>Parses <c>rabbitmq://user:pass@host:port/vhost</c> (or <c>amqp://</c>); the message names <paramref name="field"/>.</summary>
    /// <exception cref="FormatException">The text is not such a URI.</exception>
    public static RabbitMqSettings Parse(string text, string field)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("rabbitmq" or "amqp") || uri.Host.Length == 0)
        {
            throw new FormatException($"{field}: expected rabbitmq://user:password@host:port/vhost, got '{Redact(text)}'");
        }

        var user = "guest";
        var password = "guest";
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            password = colon < 0 ? "" : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }

        var path = uri.AbsolutePath.TrimStart('/');
        var vhost = path.Length == 0 ? "/" : Uri.UnescapeDataString(path);
        var port = uri.IsDefaultPort || uri.Port <= 0 ? 5672 : uri.Port;
        return new RabbitMqSettings(uri.Host, checked((ushort)port), vhost, user, password);
    }

    /// <summary>The settings of the <c>Bus:RabbitMq</c> section, or null when it has none.</summary>
    /// <exception cref="FormatException">A value is invalid (the message names the key).</exception>
    public static RabbitMqSettings? FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection("Bus:RabbitMq");
        if (section["Uri"] is { Length: > 0 } uri)
        {
            return Parse(uri, "Bus:RabbitMq:Uri");
        }

        if (section["Host"] is not { Length: > 0 } host)
        {
            return null;
        }

        ushort port = 5672;
        if (section["Port"] is { Length: > 0 } p && !ushort.TryParse(p, System.Globalization.CultureInfo.InvariantCulture, out port))
        {
            throw new FormatException($"Bus:RabbitMq:Port: expected a port number, got '{p}'");
        }

        return new RabbitMqSettings(host, port, section["VirtualHost"] is { Length: > 0 } v ? v : "/", section["Username"] ?? "guest", section["Password"] ?? "guest");
    }

    private static string Redact(string text) =>
        text.IndexOf('@', StringComparison.Ordinal) is var at and > 0 && text.IndexOf("://", StringComparison.Ordinal) is var s and >= 0 && s < at
            ? text[..(s + 3)] + "***" + text[at..]
            : text;
}
