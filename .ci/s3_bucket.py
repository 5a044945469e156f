"""Wait for a local S3 server to answer, then create a bucket: s3_bucket.py ENDPOINT BUCKET."""
import sys
import time
import urllib.error
import urllib.request

endpoint, bucket = sys.argv[1], sys.argv[2]
deadline = time.time() + 60
while True:
    try:
        req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
        urllib.request.urlopen(req, timeout=5)
        print(f"bucket {bucket} ready at {endpoint}")
        break
    except urllib.error.HTTPError as e:
        if e.code == 409:  # already exists (BucketAlreadyOwnedByYou)
            break
        sys.exit(f"creating bucket {bucket} at {endpoint}: HTTP {e.code}")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        if time.time() > deadline:
            sys.exit(f"S3 server at {endpoint} did not come up: {e}")
        time.sleep(0.3)
