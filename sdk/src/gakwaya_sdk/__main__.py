from gakwaya_sdk.tool import main

raise SystemExit(main())
