// Upload check for the plain-HTTP forwarding path (run by tests/clients/run.sh):
// Java 17 HttpClient with expectContinue(true) posts 5 MB through the proxy.
//
//   java Upload.java PROXY_HOST PROXY_PORT PASSWORD TARGET_URL
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;

public class Upload {
    public static void main(String[] args) throws Exception {
        int size = 5 << 20;
        byte[] data = new byte[size];
        for (int i = 0; i < size; i++) {
            data[i] = (byte) (i % 251);
        }
        String creds = Base64.getEncoder()
            .encodeToString(("java:" + args[2]).getBytes(StandardCharsets.UTF_8));
        HttpClient client = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .proxy(ProxySelector.of(new InetSocketAddress(args[0], Integer.parseInt(args[1]))))
            .connectTimeout(Duration.ofSeconds(10))
            .build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[3]))
            .expectContinue(true)
            .header("Proxy-Authorization", "Basic " + creds)
            .timeout(Duration.ofSeconds(60))
            .POST(HttpRequest.BodyPublishers.ofByteArray(data))
            .build();
        long start = System.nanoTime();
        HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
        double took = (System.nanoTime() - start) / 1e9;
        String want = size + " " + HexFormat.of().formatHex(
            MessageDigest.getInstance("SHA-256").digest(data));
        if (response.statusCode() != 200 || !response.body().equals(want)) {
            System.out.println("java: status " + response.statusCode() + " body " + response.body());
            System.exit(1);
        }
        System.out.printf("java HttpClient expectContinue(true) 5 MB upload: %d in %.3f s%n",
            response.statusCode(), took);
        if (took > 10) {
            System.out.println("java: the upload waited for a 100 Continue too long");
            System.exit(1);
        }
    }
}
